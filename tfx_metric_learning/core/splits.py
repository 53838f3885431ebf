"""The split names every stage shares: ``train`` to fit, ``eval`` to test, ``valid`` to select.

ExampleGen writes them; Transform, PairGen, the Trainer and the evaluator read them;
``components/example_gen/split_plan`` says how the rows are chosen.
"""

TRAIN, EVAL, VALID = "train", "eval", "valid"

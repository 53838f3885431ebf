"""Every key and file name of the ClassBalance component, shared by component, executor, tests."""

from tfx.types.artifact import Artifact

EXAMPLES_KEY = "examples"
BALANCE_KEY = "class_balance"
MIN_ROWS_KEY = "min_rows_per_class"
LABEL_KEY = "label_feature"
BALANCE_FILE = "class_balance.json"


class ClassBalance(Artifact):
    """Rows per class and split, and the classes under the minimum (``BALANCE_FILE``)."""

    TYPE_NAME = "acme.ClassBalance"

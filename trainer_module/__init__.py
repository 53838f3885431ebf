"""Code that runs inside Transform and Trainer: preprocessing, distances, losses, model, run_fn."""

"""Pusher: TFX's Pusher with a push that a killed run never leaves half-done (``executor``)."""

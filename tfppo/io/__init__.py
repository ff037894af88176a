"""What a run writes for people to read: the key/value logger and its key names, the progress bar, plots."""

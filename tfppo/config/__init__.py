"""What a run is: the `Semantics` switches and presets, the hyperparameters with their original names,
schedules, seeding and the env-tuned defaults. No TensorFlow, no envs."""

"""Command-line entry points: tfppo-ppo1, tfppo-ppo2, tfppo-evaluate (parsing, config building, one-line errors)."""

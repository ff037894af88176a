"""Generic tools with no PPO knowledge: errors, atomic writes, TensorFlow process set-up, a quiet console,
running statistics. The bottom layer: it imports nothing else of tfppo."""

"""The maths shared by both trainers: the Keras actor-critic, distributions, losses, the one compiled update,
the acting path and rollout collection with GAE."""

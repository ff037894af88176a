"""A stand-in for scripts/ppo1.py / ppo2.py in runner tests: same flags, no TensorFlow, fast.

It writes the files a real run leaves (progress.csv with PPO2's keys, evaluations.csv,
semantics.json) with returns that depend on the seed, so collected results can be checked.
Behaviour is steered by environment variables:
  FAKE_FAIL_ONCE=1      the first attempt of every run fails (exit 1); a marker beside the run dir
                        records that it did, so the retry succeeds.
  FAKE_ALWAYS_FAIL=NAME runs of variant NAME always fail.
  FAKE_SLEEP=S          sleep S seconds before writing (to interrupt a suite mid-way).
  FAKE_LEDGER=PATH      append one line "env/variant/seed" per completed run (counts executions).
  FAKE_INTERVALS=PATH   append one line "<start> <end> <workers>" (wall-clock seconds) per run.
"""
import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--env")
parser.add_argument("--seed", type=int)
parser.add_argument("--log_dir")
parser.add_argument("--total_timesteps", type=int)
parser.add_argument("--max_timesteps", type=int)
parser.add_argument("--semantics", action="append", default=[])
args, _ = parser.parse_known_args()
log_dir = Path(args.log_dir)
variant = log_dir.parent.name
marker = log_dir.parent / f".failed-once-seed-{args.seed}"
if os.environ.get("FAKE_FAIL_ONCE") and not marker.exists():
    marker.touch()
    print("fake_trainer: error: planned failure on the first attempt", file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAKE_ALWAYS_FAIL") == variant:
    print("fake_trainer: error: this variant always fails", file=sys.stderr)
    sys.exit(1)
started = time.time()
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
if os.environ.get("FAKE_INTERVALS"):
    with open(os.environ["FAKE_INTERVALS"], "a") as intervals:
        intervals.write(f"{started} {time.time()} {os.environ.get('FAKE_WORKERS', '1')}\n")
budget = args.total_timesteps or args.max_timesteps
final = 100.0 + 10.0 * args.seed + (5.0 if variant.startswith("ppo1") else 0.0)
log_dir.mkdir(parents=True, exist_ok=True)
with open(log_dir / "progress.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["total_timesteps", "time_elapsed", "ep_reward_mean", "approxkl"])
    for i in range(1, 5):
        writer.writerow([budget * i // 4, 0.1 * i, final * i / 4, 0.01])
with open(log_dir / "evaluations.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["timesteps", "time_elapsed", "eval_return_mean", "eval_return_std", "eval_length_mean",
                     "episodes"])
    for i in range(0, 5):
        writer.writerow([budget * i // 4, 0.1 * i, 2 * final * i / 4, 0.0, 10, 2])
(log_dir / "semantics.json").write_text(json.dumps({"semantics": args.semantics}))
if os.environ.get("FAKE_LEDGER"):
    # The ledger line marks a completed run, so from here to exit the run must not be stoppable: a
    # SIGTERM landing between the line and the exit would make the runner (rightly) redo the run.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with open(os.environ["FAKE_LEDGER"], "a") as ledger:
        ledger.write(f"{args.env}/{variant}/{args.seed}\n")

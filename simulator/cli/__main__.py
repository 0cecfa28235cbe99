"""`python -m simulator.cli ...`: the same as `trainsim ...`."""

from simulator.cli import main

main()

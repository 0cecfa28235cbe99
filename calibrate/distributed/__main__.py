"""`python -m calibrate.distributed ARGS`, what torchrun runs on every rank: the worker (see `worker`)."""

from calibrate.distributed.worker import main

if __name__ == "__main__":
    main()

"""Peak memory of the current process, for the benchmarks."""

import resource


def peak_rss_mb() -> float:
    """Peak RSS of this process's address space, in MB.

    Read from VmHWM, which unlike ru_maxrss is not inherited from the parent across exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

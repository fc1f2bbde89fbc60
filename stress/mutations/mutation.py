"""One planted bug for stress/mutate, and the classes of blind spot (issue 20).

A mutation is one or more textual edits to the model's Swift sources; each
`old` text must occur exactly once in `file`. `scenarios` are the scenarios
whose regression cases (random and PCT) and fixed variants (parallel stress)
must notice it. `cls` names the blind spot the mutation probes:

  0  direct: the harm happens at a scheduling point and an oracle sees it
  1  a window with no scheduling point (a check moved across a step the
     kernel can be preempted between)
  2  modelled state nobody exercises (other CPUs' contexts, kernel-mode
     accesses, the boundary pages of a flushed range, a configuration)
  3  a budget shorter than the race (found only by PCT, long runs or real
     threads)
  4  a contract without an oracle (a flag, a registration rule, an order
     the hcall return codes do not show)
  5  harm without a witness (memory stays safe, the guest sees the wrong
     page or a stale translation that still maps the same page)

`survivor` explains a mutant that is expected to survive (equivalent in the
model, or a named blind spot with its issue); docs/reliability.md carries it.
Mutation files are stress/mutations/<mechanism>.py, each a MUTATIONS list.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

CLASSES = {
    0: "direct",
    1: "window with no scheduling point",
    2: "modelled state nobody exercises",
    3: "budget shorter than the race",
    4: "contract without an oracle",
    5: "harm without a witness",
}


@dataclass
class Mutation:
    name: str
    cls: int
    kind: str
    file: str
    edits: List[Tuple[str, str]]
    scenarios: List[str]
    survivor: Optional[str] = None
    # Extra `kvmsim regress` arguments (for example a --budget of its own).
    regress_args: List[str] = field(default_factory=list)

    def __post_init__(self):
        assert self.cls in CLASSES, f"{self.name}: class {self.cls} unknown"
        assert self.edits and self.scenarios, f"{self.name}: edits and scenarios needed"

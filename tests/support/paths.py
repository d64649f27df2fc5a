"""Where the tests find the project, its own fixtures and the shared real dumps (each once)."""

from __future__ import annotations

import platform
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
DUMPS = FIXTURES / "dumps"
PROCESSORS = FIXTURES / "processors"
# The development machine (an AMD EPYC KVM guest), recorded by `cpuid -r`: always present.
DEV_DUMP = PROCESSORS / "dev-amd-epyc-kvm.cpuid-r.txt"
# The same machine's nested-KVM offer (what its /dev/kvm would give a guest).
NESTED_KVM_OFFER = PROCESSORS / "dev-amd-epyc-nested-kvm-offer.json"
OTHER_DUMP = DUMPS / "cpuid-r-two-cpus.txt"  # another processor: another fingerprint
# The shared real dumps beside the project; tests that use them skip when absent.
SHARED_DUMPS = PROJECT_ROOT.parent / "shared" / "cpuid-dumps"
IS_X86_64 = platform.machine() in ("x86_64", "AMD64")

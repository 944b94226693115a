# Loads OSCAL catalogs with compliance-trestle (the IBM/OSCAL-compass Python SDK) and
# prints how many controls each holds: a check that our exports are valid OSCAL as
# other tools read it. Used by scripts/check-oscal-exports.sh.
import sys, pathlib
from trestle.oscal.catalog import Catalog
def count(cs): return sum(1 + count(getattr(c, "controls", None)) for c in cs or [])
def gcount(gs): return sum(count(getattr(g, "controls", None)) + gcount(getattr(g, "groups", None)) for g in gs or [])
for p in sys.argv[1:]:
    cat = Catalog.oscal_read(pathlib.Path(p))
    print(pathlib.Path(p).name, "loads:", cat.metadata.title, "-", count(cat.controls) + gcount(cat.groups), "controls")

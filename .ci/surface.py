"""The public surface of the core crate, as rustdoc lists it (all.html:
structs, enums, traits, functions, constants, type aliases, macros) plus its
public modules, must stay within the frozen budget."""
import re, sys

# 51: network coordinates added `Coordinate`, the one type they need.
LIMIT = 51
html = open(sys.argv[1]).read()
items = [i for i in re.findall(r'href="([^"]+\.html)"', html) if not i.startswith("../") and i != "index.html"]
modules = {i.rsplit("/", 1)[0] for i in items if "/" in i}
total = len(items) + len(modules)
print(f"{len(items)} items in {len(modules)} public modules: {total} (at most {LIMIT})")
if total > LIMIT:
    sys.exit("the public surface grew past its budget: " + ", ".join(items))

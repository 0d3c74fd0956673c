#!/usr/bin/env python3
"""Compares syncret's generated CRDs with ESO's, field by field.

    e2e/eso/crd-diff.py <ESO checkout>/config/crds/bases [deploy/crds]

For every CRD of ESO's (`<group>_<plural>.yaml`) it walks the openAPIV3Schema of each version and prints where
syncret's differs: fields missing or extra, types, enums, defaults, required lists. A kind syncret does not ship is
named once. Exit status 0 whatever it finds: the differences we keep on purpose are listed in docs/design.md
("Schema differences from ESO"). Reads only YAML (PyYAML); ESO's checkout comes from wherever you keep one
(e.g. `git clone --depth 1 -b v2.9.0 https://github.com/external-secrets/external-secrets`).
"""
import glob
import os
import sys

import yaml


def schemas(path):
    with open(path) as f:
        d = yaml.safe_load(f)
    return {v["name"]: v["schema"]["openAPIV3Schema"] for v in d["spec"]["versions"]}, d["spec"]["names"]["kind"]


def walk(a, b, path, out):
    if a is None or b is None:
        return
    int_or_string = a.get("x-kubernetes-int-or-string") or b.get("x-kubernetes-int-or-string")
    if a.get("type") != b.get("type") and not int_or_string:
        out.append(f"{path}: type eso={a.get('type')} ours={b.get('type')}")
    ea, eb = a.get("enum"), b.get("enum")
    if (ea or eb) and sorted(map(str, ea or [])) != sorted(map(str, eb or [])):
        out.append(f"{path}: enum eso={ea} ours={eb}")
    ra, rb = set(a.get("required", [])), set(b.get("required", []))
    if ra != rb:
        out.append(f"{path}: required eso-only={sorted(ra - rb)} ours-only={sorted(rb - ra)}")
    if a.get("default") != b.get("default"):
        out.append(f"{path}: default eso={a.get('default')!r} ours={b.get('default')!r}")
    pa, pb = a.get("properties", {}), b.get("properties", {})
    for k in sorted(set(pa) | set(pb)):
        if k not in pb:
            out.append(f"{path}.{k}: missing in ours")
        elif k not in pa:
            out.append(f"{path}.{k}: extra in ours")
        else:
            walk(pa[k], pb[k], f"{path}.{k}", out)
    if "items" in a or "items" in b:
        walk(a.get("items"), b.get("items"), path + "[]", out)
    aa, ab = a.get("additionalProperties"), b.get("additionalProperties")
    if isinstance(aa, dict) and isinstance(ab, dict):
        walk(aa, ab, path + "{}", out)
    elif isinstance(aa, dict) or isinstance(ab, dict):
        out.append(f"{path}: additionalProperties eso={type(aa).__name__} ours={type(ab).__name__}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    eso_dir = sys.argv[1]
    ours_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "crds")
    for f in sorted(glob.glob(os.path.join(eso_dir, "*.yaml"))):
        group, _, rest = os.path.basename(f).partition("_")
        mine = os.path.join(ours_dir, f"{rest[: -len('.yaml')]}.{group}.yaml")
        eso, kind = schemas(f)
        if not os.path.exists(mine):
            print(f"## {kind}: not shipped by syncret")
            continue
        ours, _ = schemas(mine)
        out = []
        for version, schema in eso.items():
            if version not in ours:
                out.append(f"version {version}: not served by syncret")
                continue
            walk(schema, ours[version], version, out)
        print(f"## {kind}: {len(out)} difference(s)")
        for line in out:
            print(f"   {line}")


if __name__ == "__main__":
    main()

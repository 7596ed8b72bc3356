"""Training recipes shipped with the package (YAML files; no code): `xling_align.recipes`.

`xling-align train --config tiny` reads `tiny.yaml` from here, from any working directory (also
`--config pkg://xling_align/recipes/tiny.yaml`); `accelerate/` holds launcher configs, whose paths
`python -m xling_align.package_paths pkg://xling_align/recipes/accelerate/ddp.yaml` prints.
"""

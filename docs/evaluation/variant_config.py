"""Write the exact experiment config of one evaluated variant: an experiment, a recipe delta from
experiments/recipes/, a new output root and a training time budget.

    python docs/evaluation/variant_config.py experiments/london.yaml experiments/recipes/paper.yaml \
        outputs/london-paper 00:00:12:00 > docs/evaluation/london/configs/kss-gan-paper.yaml
    kssgan fit --config docs/evaluation/london/configs/kss-gan-paper.yaml

(LightningCLI can compose the delta itself with a second --config, but every path of the loggers and
callbacks would still point at the base experiment's output folder.)
"""

import sys

import yaml


def merge(base: dict, delta: dict) -> dict:
    for key, value in delta.items():
        base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
    return base


def main() -> None:
    experiment, recipe, root, max_time = sys.argv[1:5]
    text = open(experiment).read()
    old_root = yaml.safe_load(text)["trainer"]["default_root_dir"]
    cfg = yaml.safe_load(text.replace(old_root, root))
    cfg = merge(cfg, yaml.safe_load(open(recipe).read()) or {})
    cfg["trainer"]["max_time"] = max_time
    print(f"# {experiment} + {recipe}, outputs in {root}, at most {max_time} of training")
    print(yaml.safe_dump(cfg, sort_keys=False, width=120), end="")


if __name__ == "__main__":
    main()

"""The layout stays as docs/architecture.md writes it: every import in src/vitok (module level or
inside a function) goes to the same layer or a lower one."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SRC = REPO / "src" / "vitok"

# docs/architecture.md, bottom to top; a module's layer is that of its top-level name
LAYERS = [
    {"model_config", "presets", "checks", "files", "io", "text", "weights", "lazy"},
    {"nn"},
    {"models"},
    {"metrics"},
    {"losses"},
    {"data", "diffusion"},
    {"train", "generate"},
    {"evaluate", "reconstruct", "bench", "export", "hub", "sweep", "viz", "integrations", "tools"},
    {"cli", "__main__"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
ALLOWED_UPWARD = {("models", "hub")}  # ViTok.push_to_hub / DiT.push_to_hub: the Hugging Face convention


def top_name(module: str) -> str:
    """'vitok.metrics.lpips' -> 'metrics'; 'vitok' itself -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def absolute(node: ast.ImportFrom, path: Path) -> str | None:
    """The absolute module of a ``from`` import in ``path``: relative ones (``from ..train import x``)
    resolved against the file's package."""
    if node.level == 0:
        return node.module
    package = list(path.relative_to(SRC.parent).with_suffix("").parts)[:-1]  # e.g. ['vitok', 'data']
    if path.name == "__init__.py":
        package = list(path.relative_to(SRC.parent).parts)[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported vitok module) for every import in a file; ``from vitok import io`` is vitok.io,
    and relative imports count as their absolute module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "vitok"]
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, path)
            if not module or module.split(".")[0] != "vitok":
                continue
            if module == "vitok":
                found += [(node.lineno, f"vitok.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
    return found


def test_relative_imports_are_resolved() -> None:
    source = "from ..train import x\nfrom . import sampler\nfrom .. import cli\n"
    path = SRC / "data" / "probe.py"
    tree = ast.parse(source)
    assert [absolute(n, path) for n in tree.body] == ["vitok.train", "vitok.data", "vitok"]


def test_every_module_has_a_layer() -> None:
    names = {p.stem if p.parent == SRC else p.relative_to(SRC).parts[0] for p in SRC.rglob("*.py")}
    names -= {"__init__"}
    assert not names - set(LAYER), f"modules missing from the layers of docs/architecture.md: {names - set(LAYER)}"


def test_imports_only_go_downward() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "__init__.py":
            continue  # the package's public API re-exports from every layer
        own = path.stem if path.parent == SRC else path.relative_to(SRC).parts[0]
        for line, module in imports(path):
            target = top_name(module)
            if target and target in LAYER and LAYER[target] > LAYER[own] and (own, target) not in ALLOWED_UPWARD:
                wrong.append(f"{path.relative_to(REPO)}:{line} ({own}, layer {LAYER[own]}) imports {module} "
                             f"(layer {LAYER[target]})")
    assert not wrong, "imports that go up a layer:\n" + "\n".join(wrong)


@pytest.mark.parametrize(("low", "high"), [("metrics", "losses"), ("models", "train"), ("nn", "models")])
def test_the_named_rules_of_the_issue(low: str, high: str) -> None:
    """metrics never import losses, and so on: a direct check of the pairs the layout is about."""
    for path in (SRC / low).rglob("*.py"):
        assert all(top_name(m) != high for _, m in imports(path)), f"{path} imports {high}"


def test_nothing_below_the_cli_imports_it() -> None:
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts or path.name == "__main__.py":
            continue
        assert all(top_name(m) != "cli" for _, m in imports(path)), f"{path} imports vitok.cli"


def test_only_the_cli_reaches_the_packaging_tools() -> None:
    """vitok.tools (data build, weights fetch) use the network; the library reads only their outputs."""
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        if parts[0] in ("cli", "tools"):
            continue
        assert all(top_name(m) != "tools" for _, m in imports(path)), f"{path} imports vitok.tools"


def test_readme_layout_names_every_module() -> None:
    """The README's layout section lists every top-level module and package of src/vitok."""
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    names = {p.name for p in SRC.iterdir() if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
             or (p.is_dir() and (p / "__init__.py").is_file())}
    missing = sorted(n for n in names if (n if n.endswith(".py") else n + "/") not in layout)
    assert not missing, f"README layout section does not mention {missing}"


PACKAGES = ["vitok", "vitok.data", "vitok.losses", "vitok.models", "vitok.train"]  # vitok.metrics: eager, see below


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_of_a_lazy_package_resolves(package: str) -> None:
    """Each name in a package's ``__all__`` imports from its home module and is that module's object;
    ``dir()`` lists it; an unknown name is an ordinary ``AttributeError``."""
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None and name in dir(module), (package, name)
        home = getattr(value, "__module__", None)
        if home is not None and home.startswith("vitok."):  # a class or function: the object of its home
            assert getattr(importlib.import_module(home), name, value) is value, (package, name)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018

    names = {info.name for info in pkgutil.iter_modules(module.__path__)} if hasattr(module, "__path__") else set()
    shadowed = sorted(names & set(module.__all__))
    assert not shadowed, (f"{package} exports {shadowed}, also the names of its submodules: importing such a "
                          "submodule would replace the lazy name with the module (import them eagerly)")


def test_a_name_that_is_also_a_submodule_stays_the_function() -> None:
    """vitok.metrics exports ``psnr``, the function, from its submodule of the same name: its names are
    imported eagerly, so the function wins whatever imported the submodule first."""
    r = run_python("import vitok.metrics.psnr, vitok.metrics; print(callable(vitok.metrics.psnr))")
    assert r.stdout.strip() == "True", r.stderr


def test_reading_a_config_and_the_cli_parser_do_not_import_torch() -> None:
    """`vitok --help` (the parser of every subcommand), reading + checking a training config and
    importing every package leave torch unimported: a wrong value answers at once."""
    code = ("import sys\n"
            "from vitok.cli import build_parser\n"
            "from vitok.train.config import load_config\n"
            "build_parser()\n"
            "load_config(sys.argv[1], ['run.steps=3'])\n"
            "import vitok, vitok.data, vitok.losses, vitok.models, vitok.train\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    r = run_python(code, str(REPO / "configs" / "vitok-tiny-conv" / "stage1.yaml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


@pytest.mark.parametrize(("command", "argv", "status", "said"), [
    ("train", ["optim.batch_size=0", "data.train=[x]"], 2, "optim.batch_size must be >= 1, got 0"),
    ("train", ["data.train=[/no/such/folder]"], 2, "data.train: /no/such/folder does not exist"),
    ("train", [], 2, "data.train is empty"),
    ("train", ["data.train=[x]", "--print-config"], 0, ""),
    ("train-dit", ["optim.batch_size=0", "latents=x"], 2, "optim.batch_size must be >= 1, got 0"),
    ("train-dit", ["objective=score"], 2, "objective"),
    ("train-dit", [], 2, "latents is empty"),
    ("train-dit", ["latents=/no/such/folder"], 2, "latents: /no/such/folder does not exist"),
    ("train-dit", ["latents=/tmp"], 2, "is not a latent cache (no stats.json)"),
    ("train-dit", ["--print-config"], 0, ""),
])
def test_a_bad_training_config_is_refused_before_torch_loads(command: str, argv: list[str], status: int,
                                                              said: str) -> None:
    """`vitok train`'s and `vitok train-dit`'s one-line errors (an out-of-range value, a missing or
    empty data path or latent cache) and --print-config come before torch is imported."""
    code = ("import sys\n"
            "from vitok.cli import main\n"
            f"status = main([{command!r}, '/dev/null', *{argv!r}])\n"
            "print(status, 'torch' in sys.modules)\n")
    r = run_python(code)
    assert r.stdout.split()[-2:] == [str(status), "False"], (r.stdout, r.stderr)
    assert said in r.stderr


def test_a_package_reaches_its_submodules_as_attributes() -> None:
    """As when the packages imported eagerly: ``import vitok; vitok.presets`` (a submodule that is
    not one of the lazy names) works in a fresh interpreter; a name that is neither is an
    ``AttributeError``; the old homes of moved names still import them."""
    code = ("import vitok, vitok.train\n"
            "print(vitok.presets.list_presets()[0], vitok.models.__name__, vitok.train.config.__name__)\n"
            "print(hasattr(vitok, 'no_such_module'))\n"
            "from vitok.models.inference import PRECISIONS\n"
            "from vitok.data.loader import MAX_SIDE\n"
            "from vitok.losses.autoencoder import Perceptual, ReconstructionLoss\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["S-B/16", "vitok.models", "vitok.train.config", "False"]

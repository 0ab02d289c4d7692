"""Writing the generated files, or checking that the committed ones match
(CI): one command line, one write-or-check loop and one entry point for
every generator."""
import argparse
import difflib
import pathlib
import sys

import shared


def parser(description):
    """The flags every generator takes; a mistyped one is an error."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="write nothing; fail (with a diff) when a file differs from what would be written")
    ap.add_argument("--config", type=pathlib.Path, metavar="SITE.toml",
                    help="site settings overriding tools/site.example.toml (selector, URLs, thresholds)")
    ap.add_argument("--output-dir", type=pathlib.Path, metavar="DIR",
                    help="write a site's copy here instead of into the repository "
                         "(DIR/prometheus, DIR/grafana, DIR/kubernetes: a kustomize component)")
    return ap


def exit_on_error(entry):
    """Runs a script's entry point; a GeneratorError ends the process with
    its message (no traceback) and status 1. Only `__main__` calls this."""
    try:
        entry()
    except shared.GeneratorError as e:
        sys.exit(f"{sys.argv[0]}: {e}")


def main(description, render, test_copy=None):
    """The entry point of a generator with the common flags. With
    `test_copy`, also `--speedup N --output FILE`: a test copy of the rules
    alone, test_copy(site, speedup) -> text, every duration divided by N
    (the end-to-end tests); never deployed."""
    exit_on_error(lambda: _main(description, render, test_copy))


def _main(description, render, test_copy):
    ap = parser(description)
    if test_copy is None:
        run(ap.parse_args(), render)
        return
    ap.add_argument("--speedup", type=float, default=1, help="divide every duration by this (test copies only)")
    ap.add_argument("--output", type=pathlib.Path, metavar="FILE",
                    help="write only the rules, here ('-': stdout), as a test copy with --speedup")
    args = ap.parse_args()
    if args.output is None:
        if args.speedup != 1:
            ap.error("--speedup writes a test copy: give --output")
        run(args, render)
        return
    if args.check or args.output_dir:
        ap.error("--output writes one file: without --check or --output-dir")
    if args.speedup <= 0:
        ap.error("--speedup must be positive")
    rules = test_copy(shared.load_site(args.config), args.speedup)
    if str(args.output) == "-":
        sys.stdout.buffer.write(rules.encode("utf-8"))
    else:
        write_or_check({args.output: rules}, check=False)


def run(args, render):
    """Renders with the site of `args` and writes or checks the result.
    render(site, for_site) -> {path relative to the output root: text};
    for_site is true with --output-dir (a site's copy, not the repository).
    Raises GeneratorError (a SiteError for the site file)."""
    site = shared.load_site(args.config)
    rendered = render(site, args.output_dir is not None)
    root = args.output_dir or shared.ROOT
    files = {root / rel: text for rel, text in rendered.items()}
    write_or_check(files, args.check)


def write_or_check(files, check):
    """Writes every {path: text} that differs, as UTF-8 with \\n line ends;
    with `check`, writes nothing and raises GeneratorError when any differs."""
    stale = []
    for path, text in files.items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old == text:
            continue
        if check:
            stale.append(str(path))
            sys.stderr.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), f"{path} (as is)", f"{path} (generated)", n=1))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print(f"wrote {path}")
    if stale:
        raise shared.GeneratorError(
            "out of date: " + ", ".join(stale)
            + "\nrun the same command without --check (python3 tools/generate.py for the repository) and commit")

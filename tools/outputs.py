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


def main(description, render):
    """The entry point of a generator with the common flags."""
    exit_on_error(lambda: run(parser(description).parse_args(), render))


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

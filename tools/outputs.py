"""Writing the generated files, or checking that the committed ones match
(CI): one command line and one write-or-check loop for every generator."""
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


def run(args, render):
    """Renders with the site of `args` and writes or checks the result.
    render(site, for_site) -> {path relative to the output root: text};
    for_site is true with --output-dir (a site's copy, not the repository)."""
    try:
        site = shared.load_site(args.config)
        rendered = render(site, args.output_dir is not None)
    except shared.SiteError as e:
        sys.exit(f"{sys.argv[0]}: {e}")
    root = args.output_dir or shared.ROOT
    files = {root / rel: text for rel, text in rendered.items()}
    write_or_check(files, args.check)


def write_or_check(files, check):
    """Writes every {path: text} that differs, as UTF-8 with \\n line ends;
    with `check`, writes nothing and exits non-zero when any differs."""
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
        sys.exit("out of date: " + ", ".join(stale)
                 + "\nrun the same command without --check (python3 tools/generate.py for the repository) and commit")


def main(description, render, test_copy):
    """`run`, or with `--speedup N --output FILE` a test copy of the rules
    alone: test_copy(site, speedup) -> text, every duration divided by N
    (the end-to-end tests); never deployed."""
    ap = parser(description)
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
    try:
        rules = test_copy(shared.load_site(args.config), args.speedup)
    except shared.SiteError as e:
        ap.error(str(e))
    if str(args.output) == "-":
        sys.stdout.buffer.write(rules.encode("utf-8"))
    else:
        write_or_check({args.output: rules}, check=False)

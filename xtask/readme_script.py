"""Turn a README's "## A task from an empty directory" section into a bash script
that follows it word for word (used by xtask/first-hour.sh).

    python3 xtask/readme_script.py README PREFIX    # the script on stdout

In the section:
  - a fenced block right after a paragraph that starts with `FILE` and ends
    with a colon (`FILE`: or `FILE`, what it is:) is written to FILE;
  - any other ```sh block is run as is, in order, in one shell (so its `cd`s hold);
  - a ```text block is what the preceding sh block's last line, `cat FILE`,
    shows: FILE is compared with it byte for byte (plus a final newline).
`<prefix>` becomes PREFIX everywhere. The section must have commands, an
expected output, and use `<prefix>` (the installed SDK, not this repository's).
Exits 1 with `README: why` when the section cannot be followed.
"""

import re
import shlex
import sys

TITLE = "## A task from an empty directory"
FILE_PARAGRAPH = re.compile(r"`([^`\s]+)`(?::|,.*:)", re.DOTALL)


def script(path, prefix):
    lines = open(path, encoding="utf-8").read().split("\n")
    if TITLE not in lines:
        raise ValueError(f"no section `{TITLE}`")
    start = lines.index(TITLE) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = lines[start:end]
    out = ["set -euo pipefail"]
    # prose: the last paragraph before the current line (new: the next line starts one)
    prose, new, shown, n_sh, n_text, uses_prefix, i = "", True, None, 0, 0, False, 0
    while i < len(section):
        line = section[i]
        if not line.startswith("```"):
            if not line.strip():
                new = True
            elif new:
                prose, new = line, False
            else:
                prose += "\n" + line
            i += 1
            continue
        lang = line[3:]
        j = next((k for k in range(i + 1, len(section)) if section[k] == "```"), None)
        if j is None:
            raise ValueError(f"a ```{lang} block is not closed")
        body = section[i + 1 : j]
        uses_prefix |= any("<prefix>" in b for b in body)
        body = [b.replace("<prefix>", prefix) for b in body]
        target = FILE_PARAGRAPH.fullmatch(prose)
        if target:
            out += [f"cat >{shlex.quote(target.group(1))} <<'FIRST_HOUR_EOF'", *body, "FIRST_HOUR_EOF"]
        elif lang == "sh":
            n_sh += 1
            out += body
            cat = re.fullmatch(r"cat (\S+)", body[-1]) if body else None
            shown = cat.group(1) if cat else None
        elif lang == "text":
            n_text += 1
            if shown is None:
                raise ValueError("a ```text block must follow a ```sh block whose last line is `cat FILE`")
            f = shlex.quote(shown)
            want = shlex.quote("\n".join(body) + "\n")
            out.append(
                f"printf '%s' {want} | cmp -s - {f} || "
                f"{{ echo \"first-hour: {shown} is not the README's text; it holds:\" >&2; cat {f} >&2; exit 1; }}"
            )
            shown = None
        else:
            raise ValueError(f"a ```{lang} block with no `FILE`: line before it")
        prose, new, i = "", True, j + 1
    if n_sh == 0 or n_text == 0:
        raise ValueError("the section has no ```sh commands or no ```text output")
    if not uses_prefix:
        raise ValueError("the section never uses the installed SDK (`<prefix>`)")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python3 xtask/readme_script.py README PREFIX")
    try:
        sys.stdout.write(script(sys.argv[1], sys.argv[2]))
    except (OSError, ValueError) as e:
        sys.exit(f"{sys.argv[1]}: {e}")

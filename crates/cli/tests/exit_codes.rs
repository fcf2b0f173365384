//! The exit-code table of `offload`: the constants of `src/exit.rs` (code, name, doc comment)
//! as a reviewed snapshot, checked against the README's "Exit codes" table so that the two
//! cannot drift apart. The binary has no library to import the constants from, so the source
//! file is read as text; a constant written in another shape fails the parse loudly.

use std::collections::BTreeMap;

const EXIT_RS: &str = include_str!("../src/exit.rs");
const README: &str = include_str!("../../../README.md");

/// One documented code: its constant's name and its doc comment.
#[derive(Debug)]
struct Code {
    name: String,
    meaning: String,
}

/// `/// doc` lines followed by `pub(crate) const NAME: i32 = N;`, by code.
fn codes_in_source(src: &str) -> BTreeMap<i32, Code> {
    let mut out = BTreeMap::new();
    let mut doc: Vec<&str> = Vec::new();
    for line in src.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim());
        } else if let Some(rest) = line.strip_prefix("pub(crate) const ") {
            let (name, value) = rest
                .strip_suffix(';')
                .and_then(|r| r.split_once(": i32 = "))
                .unwrap_or_else(|| panic!("an exit code in an unknown shape: {line:?}"));
            let code: i32 = value.parse().unwrap();
            assert!(!doc.is_empty(), "{name} has no doc comment");
            let previous = out.insert(
                code,
                Code {
                    name: name.to_owned(),
                    meaning: doc.join(" "),
                },
            );
            assert!(previous.is_none(), "code {code} is defined twice");
            doc.clear();
        } else {
            doc.clear();
        }
    }
    out
}

/// The rows of the README's `### Exit codes` table: (codes of the row, meaning).
fn codes_in_readme(readme: &str) -> Vec<(Vec<i32>, String)> {
    readme
        .lines()
        .skip_while(|l| *l != "### Exit codes")
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').splitn(2, '|').collect();
            let codes = cells[0]
                .split(',')
                .map(|c| c.trim().parse().unwrap_or_else(|e| panic!("{row:?}: {e}")))
                .collect();
            (codes, cells[1].trim().to_owned())
        })
        .collect()
}

#[test]
fn the_exit_codes_are_the_documented_ones() {
    let source = codes_in_source(EXIT_RS);
    let readme = codes_in_readme(README);
    assert!(!readme.is_empty(), "no exit-code table in README.md");

    // Every constant is documented and every documented code is a constant, except the
    // signal codes (128 + the signal, computed in main.rs).
    let documented: BTreeMap<i32, &str> = readme
        .iter()
        .flat_map(|(codes, meaning)| codes.iter().map(move |c| (*c, meaning.as_str())))
        .collect();
    for (code, c) in &source {
        assert!(
            documented.contains_key(code),
            "{} = {code} is not in README's exit-code table",
            c.name
        );
    }
    for code in documented.keys() {
        assert!(
            source.contains_key(code) || *code > 128,
            "README documents exit code {code}, which src/exit.rs does not define"
        );
    }

    let mut table = String::from("code | constant | src/exit.rs | README.md\n");
    for (code, meaning) in &documented {
        let (name, doc) = source
            .get(code)
            .map_or(("-", "-"), |c| (c.name.as_str(), c.meaning.as_str()));
        table.push_str(&format!("{code} | {name} | {doc} | {meaning}\n"));
    }
    insta::assert_snapshot!("exit_codes", table);
}

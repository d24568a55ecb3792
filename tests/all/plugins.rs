//! The stock plugins (docs/plugins.md), the C SDK example and the SDK's
//! metadata section, run as wasm through the runtime with exact outputs.

use engine::task::abi::inspect_bytes;
use engine::task::message::TaskFailure;

use crate::util::{GuestRun, guest, input, list_input, run_guest};

const TEXT: &str = "The cat and the Hat.\nthe CAT sat; Ärger über-all\n";

fn out(run: &GuestRun) -> String {
    run.text("out")
}

// ---- metadata -----------------------------------------------------------

#[test]
fn every_stock_plugin_embeds_its_metadata() {
    // (name, inputs, outputs, params)
    type Row<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let table: &[Row<'_>] = &[
        ("split", &["text"], &["*"], &["chunks"]),
        ("wordcount", &["text"], &["out"], &["lowercase", "min_len"]),
        ("merge", &["parts"], &["out"], &[]),
        ("topk", &["counts"], &["out"], &["k", "delimiter", "column"]),
        ("concat", &["parts"], &["out"], &["separator", "skip_header"]),
        ("sha256", &["data"], &["out"], &[]),
        ("gzip", &["data"], &["out"], &["level"]),
        ("gunzip", &["data"], &["out"], &[]),
        ("json_select", &["json"], &["out"], &["path", "pretty"]),
        (
            "csv_aggregate",
            &["csv"],
            &["out"],
            &["group_by", "op", "column", "delimiter", "input_delimiter", "output_delimiter", "header"],
        ),
        ("c_wordcount", &["text"], &["out"], &["lowercase", "min_len"]),
    ];
    for &(name, inputs, outputs, params) in table {
        let bytes = std::fs::read(guest(name)).unwrap();
        let info = inspect_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let meta = info.meta.unwrap_or_else(|| panic!("{name}: no engine.task section"));
        assert_eq!(meta.abi, 1, "{name}");
        assert_eq!(meta.name, name);
        assert_eq!(meta.version, "0.1.0", "{name}");
        assert!(!meta.description.is_empty(), "{name}");
        assert_eq!(meta.inputs, inputs, "{name}");
        assert_eq!(meta.outputs, outputs, "{name}");
        assert_eq!(meta.params, Some(params.iter().map(|p| p.to_string()).collect()), "{name}");
    }
}

#[test]
fn echo_declares_no_params_list() {
    let bytes = std::fs::read(guest("echo")).unwrap();
    let meta = inspect_bytes(&bytes).unwrap().meta.unwrap();
    assert_eq!(meta.params, None);
    assert_eq!(meta.outputs, ["*"]);
}

// ---- split --------------------------------------------------------------

#[test]
fn split_cuts_on_line_boundaries() {
    let run = run_guest("split", vec![input("text", "aa\nbbbb\ncc\nd\neeeeeee\n")], r#"{"chunks":3}"#);
    assert_eq!(run.outputs().keys().collect::<Vec<_>>(), ["0", "1", "2"]);
    assert_eq!(run.text("0"), "aa\nbbbb\n");
    assert_eq!(run.text("1"), "cc\nd\neeeeeee\n");
    assert_eq!(run.text("2"), "");

    let run = run_guest("split", vec![input("text", "abc")], r#"{"chunks":2}"#);
    assert_eq!((run.text("0"), run.text("1")), ("abc".into(), "".into()));
}

/// The rule of docs/plugins.md#split, written out naively.
fn split_reference(data: &[u8], n: usize) -> Vec<Vec<u8>> {
    let len = data.len();
    let mut bounds = vec![0];
    for k in 1..n {
        let t = k * len / n;
        let mut p = t.max(*bounds.last().unwrap());
        while !(p == 0 || p == len || data[p - 1] == b'\n') {
            p += 1;
        }
        bounds.push(p);
    }
    bounds.push(len);
    bounds.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
}

#[test]
fn split_matches_the_documented_rule() {
    // Long enough to cross the SDK's 64 KiB read chunks.
    let mut big = String::new();
    for i in 0..20_000 {
        big.push_str(&"x".repeat(i % 13));
        big.push('\n');
    }
    let cases: &[(&str, &[usize])] = &[
        ("", &[1, 3]),
        ("\n\n\n\n", &[2, 4, 7]),
        ("one line without newline", &[1, 2, 5]),
        ("a\nbb\nccc\ndddd\neeeee\nffffff\n", &[1, 2, 3, 4, 6, 10]),
        (&big, &[1, 2, 7, 100]),
    ];
    for &(text, ns) in cases {
        for &n in ns {
            let run = run_guest("split", vec![input("text", text)], &format!(r#"{{"chunks":{n}}}"#));
            let outs = run.outputs();
            assert_eq!(outs.len(), n);
            let expected = split_reference(text.as_bytes(), n);
            for (k, want) in expected.iter().enumerate() {
                assert_eq!(&outs[&k.to_string()], want, "chunk {k} of {n} for a {}-byte text", text.len());
            }
        }
    }
}

#[test]
fn split_rejects_bad_chunks() {
    let run = run_guest("split", vec![input("text", "a\n")], "{}");
    assert_eq!(run.error(), "param `chunks` is required (number of chunks, 1 to 10000)");
    let run = run_guest("split", vec![input("text", "a\n")], r#"{"chunks":0}"#);
    assert_eq!(run.error(), "param `chunks` must be between 1 and 10000, got 0");
    let run = run_guest("split", vec![input("text", "a\n")], r#"{"chunks":10001}"#);
    assert_eq!(run.error(), "param `chunks` must be between 1 and 10000, got 10001");
}

// ---- wordcount ----------------------------------------------------------

#[test]
fn wordcount_counts_unicode_words() {
    let run = run_guest("wordcount", vec![input("text", TEXT)], "{}");
    assert_eq!(out(&run), "all\t1\nand\t1\ncat\t2\nhat\t1\nsat\t1\nthe\t3\närger\t1\nüber\t1\n");
    assert!(run.log.contains("[info] 8 distinct words\n"), "log: {}", run.log);

    let run = run_guest("wordcount", vec![input("text", TEXT)], r#"{"lowercase":false,"min_len":3}"#);
    assert_eq!(out(&run), "CAT\t1\nHat\t1\nThe\t1\nall\t1\nand\t1\ncat\t1\nsat\t1\nthe\t2\nÄrger\t1\nüber\t1\n");

    let run = run_guest("wordcount", vec![input("text", "don't stop-me_now 42\n\n")], "{}");
    assert_eq!(out(&run), "42\t1\ndon\t1\nme\t1\nnow\t1\nstop\t1\nt\t1\n");

    let run = run_guest("wordcount", vec![input("text", "")], "{}");
    assert_eq!(out(&run), "");
}

#[test]
fn wordcount_reports_bad_params_and_missing_input() {
    let run = run_guest("wordcount", vec![input("text", TEXT)], r#"{"lowercse":true}"#);
    assert_eq!(
        run.error(),
        "invalid params: unknown field `lowercse`, expected `lowercase` or `min_len` at line 1 column 11"
    );
    let run = run_guest("wordcount", vec![input("text", TEXT)], r#"{"min_len":"3"}"#);
    assert_eq!(run.error(), "invalid params: invalid type: string \"3\", expected usize at line 1 column 14");
    let run = run_guest("wordcount", vec![], "{}");
    assert_eq!(run.error(), "missing input `text`");
    let run = run_guest("wordcount", vec![list_input("text", &["a", "b"])], "{}");
    assert_eq!(run.error(), "input `text` is a list; expected a single input");
}

#[test]
fn c_wordcount_matches_wordcount_on_ascii() {
    let text = "It was the best of times, it was the worst of times;\nit was the age of wisdom.\n";
    for params in ["{}", r#"{"lowercase":false,"min_len":3}"#] {
        let c = run_guest("c_wordcount", vec![input("text", text)], params);
        let rust = run_guest("wordcount", vec![input("text", text)], params);
        assert_eq!(out(&c), out(&rust), "params {params}");
    }
    let c = run_guest("c_wordcount", vec![input("text", text)], "{}");
    assert_eq!(out(&c), "age\t1\nbest\t1\nit\t3\nof\t3\nthe\t3\ntimes\t2\nwas\t3\nwisdom\t1\nworst\t1\n");
    assert!(c.log.contains("[info] 9 distinct words\n"), "log: {}", c.log);
    // Non-ASCII bytes separate words.
    let c = run_guest("c_wordcount", vec![input("text", TEXT)], "{}");
    assert_eq!(out(&c), "all\t1\nand\t1\nber\t1\ncat\t2\nhat\t1\nrger\t1\nsat\t1\nthe\t3\n");
    assert_eq!(run_guest("c_wordcount", vec![], "{}").error(), "missing input `text`");
    let c = run_guest("c_wordcount", vec![input("text", "x")], r#"{"min_len":"x"}"#);
    assert_eq!(c.error(), "param `min_len` must be an integer");
}

// ---- merge and topk -----------------------------------------------------

#[test]
fn merge_sums_tables() {
    let run =
        run_guest("merge", vec![list_input("parts", &["a\t2\nb\t1\n", "b\t5\r\nc\t1\n\n", "tab\tin word\t7"])], "{}");
    assert_eq!(out(&run), "a\t2\nb\t6\nc\t1\ntab\tin word\t7\n");
    let run = run_guest("merge", vec![input("parts", "z\t1\n")], "{}");
    assert_eq!(out(&run), "z\t1\n");
    let run = run_guest("merge", vec![], "{}");
    assert_eq!(out(&run), "");
}

#[test]
fn merge_reports_malformed_lines() {
    let run = run_guest("merge", vec![list_input("parts", &["a\t2\n", "x\n"])], "{}");
    assert_eq!(run.error(), "input `parts[1]` line 1: expected `word<TAB>count`");
    let run = run_guest("merge", vec![list_input("parts", &["a\t2\n\nb\tx\n"])], "{}");
    assert_eq!(run.error(), "input `parts[0]` line 3: count `x` is not a non-negative integer");
    let run = run_guest("merge", vec![input("parts", "a\t-1\n")], "{}");
    assert_eq!(run.error(), "input `parts` line 1: count `-1` is not a non-negative integer");
    let run = run_guest("merge", vec![list_input("parts", &["the\t18446744073709551615\n", "the\t1\n"])], "{}");
    assert_eq!(run.error(), "count for `the` overflows 64 bits");
    let run = run_guest("merge", vec![input("parts", "")], r#"{"k":1}"#);
    assert_eq!(run.error(), "invalid params: unknown field `k`, there are no fields at line 1 column 4");
}

#[test]
fn topk_orders_by_count_then_word() {
    let table = "a\t2\nb\t1\nc\t5\nd\t2\ne\t1\n";
    let run = run_guest("topk", vec![input("counts", table)], r#"{"k":3}"#);
    assert_eq!(out(&run), "c\t5\na\t2\nd\t2\n");
    let run = run_guest("topk", vec![input("counts", table)], r#"{"k":4}"#);
    assert_eq!(out(&run), "c\t5\na\t2\nd\t2\nb\t1\n");
    let run = run_guest("topk", vec![input("counts", table)], "{}");
    assert_eq!(out(&run), "c\t5\na\t2\nd\t2\nb\t1\ne\t1\n");
    let run = run_guest("topk", vec![input("counts", table)], r#"{"k":0}"#);
    assert_eq!(out(&run), "");
    let many: String = (0..100).map(|i| format!("w{i:03}\t{}\n", i % 7)).collect();
    let run = run_guest("topk", vec![input("counts", many)], "{}");
    assert_eq!(out(&run), "w006\t6\nw013\t6\nw020\t6\nw027\t6\nw034\t6\nw041\t6\nw048\t6\nw055\t6\nw062\t6\nw069\t6\n");
    let run = run_guest("topk", vec![input("counts", "a\t1\nb\t2\nc\t1\nd 4\n")], "{}");
    assert_eq!(run.error(), "input `counts` line 4: expected `word<TAB>count`");
}

#[test]
fn topk_ranks_any_column_of_a_delimited_table() {
    let csv = "pear,3,x\nfig,10,y\napple,3,z\nkiwi,7,w\n";
    let run = run_guest("topk", vec![input("counts", csv)], r#"{"k":3,"delimiter":",","column":2}"#);
    assert_eq!(out(&run), "fig,10,y\nkiwi,7,w\napple,3,z\n");
    let run = run_guest("topk", vec![input("counts", "a,2\nb,9\n")], r#"{"k":1,"delimiter":","}"#);
    assert_eq!(out(&run), "b,9\n");
    let run = run_guest("topk", vec![input("counts", csv)], r#"{"delimiter":",","column":3}"#);
    assert_eq!(run.error(), "input `counts` line 1: count `x` is not a non-negative integer");
    let run = run_guest("topk", vec![input("counts", csv)], r#"{"delimiter":";","column":2}"#);
    assert_eq!(run.error(), "input `counts` line 1: no column 2 with delimiter `;`");
    let run = run_guest("topk", vec![input("counts", csv)], r#"{"column":0}"#);
    assert_eq!(run.error(), "param `column` counts from 1");
}

// ---- concat, sha256 -----------------------------------------------------

#[test]
fn concat_joins_in_index_order() {
    let run = run_guest("concat", vec![list_input("parts", &["a\t2\n", "b\t5\n"])], r#"{"separator":"--\n"}"#);
    assert_eq!(out(&run), "a\t2\n--\nb\t5\n");
    let big = vec![b'z'; 200_000];
    let run = run_guest("concat", vec![list_input("parts", &[&b"x"[..], &big, b"y"])], "{}");
    assert_eq!(run.outputs()["out"], [&b"x"[..], &big, b"y"].concat());
    let run = run_guest("concat", vec![], r#"{"separator":","}"#);
    assert_eq!(out(&run), "");
}

#[test]
fn concat_skip_header_keeps_only_the_first_header() {
    let parts = ["h1,h2\na,1\n", "h1,h2\nb,2\n", "h1,h2\n", "h1,h2"];
    let run = run_guest("concat", vec![list_input("parts", &parts)], r#"{"skip_header":true}"#);
    assert_eq!(out(&run), "h1,h2\na,1\nb,2\n");
    let run = run_guest("concat", vec![list_input("parts", &parts[..2])], "{}");
    assert_eq!(out(&run), "h1,h2\na,1\nh1,h2\nb,2\n");
}

#[test]
fn sha256_writes_hex_digest() {
    let run = run_guest("sha256", vec![input("data", "")], "{}");
    assert_eq!(out(&run), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n");
    let run = run_guest("sha256", vec![input("data", "abc")], "{}");
    assert_eq!(out(&run), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
    let big = vec![7u8; 300_000];
    let run = run_guest("sha256", vec![input("data", &big)], "{}");
    assert_eq!(out(&run), format!("{}\n", engine::store::Digest::of(&big).to_hex()));
}

// ---- gzip, gunzip -------------------------------------------------------

/// `gzip.compress(b"hello ", mtime=0) + gzip.compress(b"world\n", mtime=0)` from Python.
const TWO_MEMBERS: &str = "1f8b0800000000000203cb48cdc9c9570000f6f981ed06000000\
                           1f8b08000000000002032bcf2fca49e10200a86138dd06000000";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn gzip_round_trips_deterministically() {
    let data: Vec<u8> = (0..200_000u32).flat_map(|i| format!("line {}\n", i % 1000).into_bytes()).collect();
    let a = run_guest("gzip", vec![input("data", &data)], "{}");
    let b = run_guest("gzip", vec![input("data", &data)], "{}");
    let gz = &a.outputs()["out"];
    assert_eq!(gz, &b.outputs()["out"]);
    assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    assert!(gz.len() < data.len() / 10, "compressed {} -> {}", data.len(), gz.len());
    let back = run_guest("gunzip", vec![input("data", gz)], "{}");
    assert_eq!(back.outputs()["out"], data);

    let stored = run_guest("gzip", vec![input("data", "abc")], r#"{"level":0}"#);
    let back = run_guest("gunzip", vec![input("data", &stored.outputs()["out"])], "{}");
    assert_eq!(out(&back), "abc");
    let run = run_guest("gzip", vec![input("data", "abc")], r#"{"level":12}"#);
    assert_eq!(run.error(), "param `level` must be between 0 and 9, got 12");
}

#[test]
fn gunzip_reads_multi_member_files_and_rejects_garbage() {
    let run = run_guest("gunzip", vec![input("data", unhex(TWO_MEMBERS))], "{}");
    assert_eq!(out(&run), "hello world\n");
    let run = run_guest("gunzip", vec![input("data", "")], "{}");
    assert_eq!(run.error(), "input `data` is not valid gzip: unexpected end of file");
    let mut truncated = unhex(TWO_MEMBERS);
    truncated.truncate(20);
    let run = run_guest("gunzip", vec![input("data", truncated)], "{}");
    assert!(run.error().starts_with("input `data` is not valid gzip: "), "{}", run.error());
}

// ---- json_select --------------------------------------------------------

#[test]
fn json_select_follows_paths() {
    let doc = r#"{"a":{"b":[10,{"z":1,"y":[true,null]}],"c":"x"}}"#;
    let sel = |path: &str| run_guest("json_select", vec![input("json", doc)], &format!(r#"{{"path":"{path}"}}"#));
    assert_eq!(out(&sel("")), format!("{doc}\n"));
    assert_eq!(out(&sel("a.b[1]")), "{\"z\":1,\"y\":[true,null]}\n");
    assert_eq!(out(&sel("a.b[1].y[0]")), "true\n");
    assert_eq!(out(&sel("a.c")), "\"x\"\n");
    assert_eq!(sel("a.q").error(), "path `a.q`: `a` has no key `q`");
    assert_eq!(sel("a.b[5]").error(), "path `a.b[5]`: index 5 is out of range for `a.b` (length 2)");
    assert_eq!(sel("a.c.d").error(), "path `a.c.d`: `a.c` is a string, not an object");
    assert_eq!(sel("[0]").error(), "path `[0]`: the document is an object, not an array");
    assert_eq!(sel("a..b").error(), "param `path` `a..b` is invalid: empty key");
    assert_eq!(sel("a[0").error(), "param `path` `a[0` is invalid: missing `]`");
    assert_eq!(
        sel("a[x]").error(),
        "param `path` `a[x]` is invalid: an index must be a non-negative integer, like `[0]`"
    );
    assert_eq!(sel("a[0]x").error(), "param `path` `a[0]x` is invalid: expected `.` or `[` after `]`");

    let run = run_guest("json_select", vec![input("json", doc)], r#"{"path":"a.b","pretty":true}"#);
    assert_eq!(out(&run), "[\n  10,\n  {\n    \"z\": 1,\n    \"y\": [\n      true,\n      null\n    ]\n  }\n]\n");
    let run = run_guest(
        "json_select",
        vec![input("json", " [1.50, 1e2, 18446744073709551615, -5, \"é\\u0001\"] \n")],
        r#"{"path":""}"#,
    );
    assert_eq!(out(&run), "[1.5,100.0,18446744073709551615,-5,\"é\\u0001\"]\n");
    let run = run_guest("json_select", vec![input("json", r#"{"a":1} x"#)], r#"{"path":"a"}"#);
    assert_eq!(run.error(), "input `json` is not valid JSON: trailing characters at line 1 column 9");
    let run = run_guest("json_select", vec![input("json", "{}")], "{}");
    assert_eq!(run.error(), "param `path` is required (e.g. \"a.b[0]\", or \"\" for the whole document)");
}

// ---- csv_aggregate ------------------------------------------------------

const CSV: &str = "city,price,qty\nParis,10,1\n\"Lyon, FR\",2.5,3\nParis,5,\nNice,,2\n";

#[test]
fn csv_aggregate_groups_and_aggregates() {
    let agg = |params: &str| run_guest("csv_aggregate", vec![input("csv", CSV)], params);
    assert_eq!(out(&agg(r#"{"group_by":"city"}"#)), "city,count\n\"Lyon, FR\",1\nNice,1\nParis,2\n");
    assert_eq!(
        out(&agg(r#"{"group_by":"city","op":"sum","column":"price"}"#)),
        "city,sum\n\"Lyon, FR\",2.5\nNice,0\nParis,15\n"
    );
    assert_eq!(
        out(&agg(r#"{"group_by":"city","op":"mean","column":"price"}"#)),
        "city,mean\n\"Lyon, FR\",2.5\nNice,\nParis,7.5\n"
    );
    assert_eq!(
        out(&agg(r#"{"group_by":"city","op":"max","column":"qty"}"#)),
        "city,max\n\"Lyon, FR\",3\nNice,2\nParis,1\n"
    );
    assert_eq!(
        out(&agg(r#"{"group_by":"city","op":"min","column":"price"}"#)),
        "city,min\n\"Lyon, FR\",2.5\nNice,\nParis,5\n"
    );
    assert_eq!(out(&agg(r#"{"group_by":"qty","op":"count","column":"city"}"#)), "qty,count\n,1\n1,1\n2,1\n3,1\n");

    let semi = "\u{feff}a;b\n\n\"x;y\";0.1\n\"x;y\";0.2\nz;1e3\n";
    let run = run_guest(
        "csv_aggregate",
        vec![input("csv", semi)],
        r#"{"group_by":"a","op":"sum","column":"b","delimiter":";"}"#,
    );
    assert_eq!(out(&run), "a;sum\n\"x;y\";0.30000000000000004\nz;1000\n");
}

#[test]
fn csv_aggregate_feeds_topk_integers_without_a_header() {
    let csv = "product;units\npear;2\nfig;-3\npear;40\nfig;9007199254740993\n";
    let run = run_guest(
        "csv_aggregate",
        vec![input("csv", csv)],
        r#"{"group_by":"product","op":"sum","column":"units","input_delimiter":";","output_delimiter":",","header":false}"#,
    );
    // Integers stay exact: 9007199254740993 - 3 is not representable as f64.
    assert_eq!(out(&run), "fig,9007199254740990\npear,42\n");
    let run = run_guest(
        "csv_aggregate",
        vec![input("csv", "k,v\na,1\na,2.5\nb,2\nb,-7\n")],
        r#"{"group_by":"k","op":"min","column":"v","header":false}"#,
    );
    assert_eq!(out(&run), "a,1\nb,-7\n");
    let run = run_guest(
        "csv_aggregate",
        vec![input("csv", csv)],
        r#"{"group_by":"product","input_delimiter":"ab","delimiter":";"}"#,
    );
    assert_eq!(run.error(), "param `input_delimiter` must be a single ASCII character, got `ab`");
}

#[test]
fn csv_aggregate_reports_errors() {
    let agg = |csv: &str, params: &str| run_guest("csv_aggregate", vec![input("csv", csv)], params).error();
    assert_eq!(agg(CSV, "{}"), "param `group_by` is required (a column name)");
    assert_eq!(agg(CSV, r#"{"group_by":"city","op":"sum"}"#), "param `column` is required for op `sum`");
    assert_eq!(
        agg(CSV, r#"{"group_by":"city","delimiter":";;"}"#),
        "param `delimiter` must be a single ASCII character, got `;;`"
    );
    assert_eq!(
        agg(CSV, r#"{"group_by":"city","op":"median"}"#),
        "invalid params: unknown variant `median`, expected one of `count`, `sum`, `mean`, `min`, `max` at line 1 column 32"
    );
    assert_eq!(agg("", r#"{"group_by":"city"}"#), "input `csv` is empty (expected a header row)");
    assert_eq!(
        agg(CSV, r#"{"group_by":"town"}"#),
        "input `csv` has no column `town` (columns: `city`, `price`, `qty`)"
    );
    assert_eq!(
        agg("city,price\nParis,1\nNice,abc\n", r#"{"group_by":"city","op":"sum","column":"price"}"#),
        "input `csv` line 3: value `abc` in column `price` is not a number"
    );
    assert_eq!(
        agg("a,b\n1,2\n3\n", r#"{"group_by":"a"}"#),
        "input `csv` is not valid CSV: CSV error: record 2 (line: 3, byte: 8): found record with 1 fields, but the previous record has 2 fields"
    );
}

// ---- a small map-reduce through the plugins -------------------------------

/// ```text
///            ┌─ wordcount(0) ─┐
/// split(3) ──┼─ wordcount(1) ─┼── merge ── topk(3)
///            └─ wordcount(2) ─┘
/// ```
#[test]
fn split_count_merge_topk_equals_one_count() {
    let text: String =
        (0..3000).map(|i| format!("w{} the {}\n", i % 17, if i % 3 == 0 { "cat" } else { "dog" })).collect();
    let split = run_guest("split", vec![input("text", &text)], r#"{"chunks":3}"#);
    let counts: Vec<Vec<u8>> = (0..3)
        .map(|k| {
            run_guest("wordcount", vec![input("text", &split.outputs()[&k.to_string()])], "{}").outputs()["out"].clone()
        })
        .collect();
    let merged = run_guest("merge", vec![list_input("parts", &counts)], "{}");
    let whole = run_guest("wordcount", vec![input("text", &text)], "{}");
    assert_eq!(out(&merged), out(&whole));
    let top = run_guest("topk", vec![input("counts", out(&merged))], r#"{"k":3}"#);
    assert_eq!(out(&top), "the\t3000\ndog\t2000\ncat\t1000\n");
}

// ---- the SDK test guests ----------------------------------------------------

#[test]
fn sdk_test_guests_behave_as_documented() {
    let run = run_guest(
        "echo",
        vec![input("a", "A"), list_input("p", &["P0", "P1"])],
        r#"{"text":"hi","log":"hello","stderr":"to stderr\n"}"#,
    );
    let outs: Vec<(&str, &[u8])> = run.outputs().iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    assert_eq!(outs, [("a", &b"A"[..]), ("out", b"hi"), ("p/0", b"P0"), ("p/1", b"P1")]);
    assert!(run.log.contains("[info] hello\n"), "log: {}", run.log);
    assert!(run.log.contains("to stderr\n"), "log: {}", run.log);

    assert_eq!(run_guest("flaky", vec![], "{}").text("out"), "ok\n");
    let run = run_guest("flaky", vec![], r#"{"fail":true}"#);
    assert_eq!(run.error(), "failing as asked");
    let location = crate::util::repo_root().join("tests/guests/rust/flaky/src/lib.rs");
    let message = format!("panicked at {}:27:9: panicking as asked", location.display());
    assert_eq!(run_guest("flaky", vec![], r#"{"panic":true}"#).failure(), &TaskFailure::Trap { message });

    assert_eq!(run_guest("sleep_ms", vec![], r#"{"ms":1}"#).text("out"), "slept 1\n");
    assert_eq!(run_guest("hog", vec![], r#"{"mib":1}"#).text("out"), "allocated 1 MiB\n");
    assert!(run_guest("noop", vec![], "{}").outputs().is_empty());
}

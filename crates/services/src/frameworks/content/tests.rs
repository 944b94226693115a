use super::*;

const GOOD: &str = r#"slug: demo
name: Demo framework
version: "1"
content_version: 1
publisher: Us
jurisdiction: United Kingdom
description: >-
  A framework for tests.
domains:
  - ref: A
    name: First
  - ref: A.1
    name: Sub
    parent: A
controls:
  - ref: A.1.1
    title: One
    domain: A.1
    criticality: high
    description: Does one thing.
    guidance: Do it well.
    evidence:
      - A record
    questions:
      - Do you do it?
    effort_days: 1.5
  - ref: A.1.2
    title: Two
    domain: A.1
    criticality: low
    description: Does another thing.
    guidance: Do it too.
    evidence:
      - Another record
    effort_days: 3
"#;

const BANK: &str = r#"questions:
  - key: do-both
    text: Do you do both things?
    controls:
      demo: [A.1.1, A.1.2]
"#;

fn files(framework: &str, bank: Option<&str>) -> Vec<SourceFile> {
    let mut out = vec![SourceFile {
        path: "content/frameworks/demo.yaml".into(),
        text: framework.into(),
    }];
    if let Some(bank) = bank {
        out.push(SourceFile {
            path: "content/questions.yaml".into(),
            text: bank.into(),
        });
    }
    out
}

#[test]
fn a_good_library_loads_and_hashes_stably() {
    let a = load(&files(GOOD, Some(BANK))).unwrap();
    let b = load(&files(GOOD, Some(BANK))).unwrap();
    assert_eq!(a.frameworks[0].controls.len(), 2);
    assert_eq!(a.questions[0].controls["demo"], ["A.1.1", "A.1.2"]);
    assert_eq!(a.hash, b.hash);
    let changed = load(&files(
        &GOOD.replace("Do it well.", "Do it better."),
        Some(BANK),
    ))
    .unwrap();
    assert_ne!(a.hash, changed.hash);
}

#[test]
fn a_bad_enum_names_file_line_and_field() {
    let bad = GOOD.replace("criticality: low", "criticality: urgent");
    let err = load(&files(&bad, Some(BANK))).unwrap_err();
    assert_eq!(err.file, "content/frameworks/demo.yaml");
    assert_eq!(err.line, Some(30));
    assert_eq!(err.field, "controls[1].criticality");
    assert!(err.message.contains("unknown variant `urgent`"), "{err}");
    assert!(
        err.to_string()
            .starts_with("content/frameworks/demo.yaml:30: controls[1].criticality:")
    );
}

#[test]
fn unknown_fields_are_refused_not_ignored() {
    let bad = GOOD.replace("    title: Two\n", "    title: Two\n    titel: typo\n");
    let err = load(&files(&bad, Some(BANK))).unwrap_err();
    assert!(err.message.contains("unknown field `titel`"), "{err}");
    assert_eq!(err.line, Some(29));
}

#[test]
fn semantic_rules_name_the_line() {
    let bad = GOOD.replace(
        "    domain: A.1\n    criticality: low",
        "    domain: B\n    criticality: low",
    );
    let err = load(&files(&bad, Some(BANK))).unwrap_err();
    assert_eq!(
        (err.line, err.field.as_str()),
        (Some(29), "controls[1].domain")
    );
    assert!(err.message.contains("no domain \"B\""));

    let dup = GOOD.replace("ref: A.1.2", "ref: A.1.1");
    let err = load(&files(&dup, Some(BANK))).unwrap_err();
    assert_eq!(
        (err.line, err.field.as_str()),
        (Some(27), "controls[1].ref")
    );

    let bad_parent = GOOD.replace("parent: A", "parent: Z");
    let err = load(&files(&bad_parent, Some(BANK))).unwrap_err();
    assert_eq!(
        (err.line, err.field.as_str()),
        (Some(14), "domains[1].parent")
    );

    let not_a_question = GOOD.replace("Do you do it?", "Do it.");
    let err = load(&files(&not_a_question, Some(BANK))).unwrap_err();
    assert_eq!(err.field, "controls[0].questions");

    let wrong_slug = GOOD.replace("slug: demo", "slug: other");
    let err = load(&files(&wrong_slug, Some(BANK))).unwrap_err();
    assert_eq!((err.line, err.field.as_str()), (Some(1), "slug"));
}

#[test]
fn every_control_needs_a_question() {
    let err = load(&files(GOOD, None)).unwrap_err();
    assert_eq!(err.field, "controls[1].questions");
    assert_eq!(err.line, Some(27));
    assert!(err.message.contains("A.1.2"));
}

#[test]
fn bank_and_mappings_must_point_at_real_controls() {
    let bank = BANK.replace("A.1.2]", "A.9]");
    let err = load(&files(GOOD, Some(&bank))).unwrap_err();
    assert_eq!(err.file, "content/questions.yaml");
    assert_eq!(err.line, Some(4));
    assert!(err.message.contains("demo has no control \"A.9\""), "{err}");

    let mut fs = files(GOOD, Some(BANK));
    fs.push(SourceFile {
        path: "content/mappings/demo--x.yaml".into(),
        text: "source: demo\ntarget: x\nbasis: test\nmappings: []\n".into(),
    });
    let err = load(&fs).unwrap_err();
    assert_eq!((err.line, err.field.as_str()), (Some(2), "target"));
}

#[test]
fn the_shipped_library_is_complete() {
    let lib = embedded().unwrap_or_else(|e| panic!("{e}"));
    let count = |slug: &str| {
        lib.frameworks
            .iter()
            .find(|f| f.slug == slug)
            .unwrap_or_else(|| panic!("{slug} missing"))
            .controls
            .len()
    };
    let annex_a = lib
        .frameworks
        .iter()
        .find(|f| f.slug == "iso27001-2022")
        .unwrap()
        .controls
        .iter()
        .filter(|c| c.reference.starts_with("A."))
        .count();
    assert_eq!(annex_a, 93);
    assert_eq!(count("nist-csf-2.0"), 106);
    assert_eq!(count("ncsc-caf"), 41);
    assert_eq!(count("pci-dss-4.0.1"), 63);
    assert!(count("soc2-2017") >= 33 + 3 + 2 + 5 + 18);
    assert!(count("uk-gdpr") >= 35);
    assert!(count("cyber-essentials") >= 25);
    assert!(count("nis2") >= 14);
    assert_eq!(lib.frameworks.len(), 8);
    assert!(
        lib.questions.len() >= 60,
        "{} shared questions",
        lib.questions.len()
    );
    assert!(lib.questions.iter().all(|q| q.controls.len() >= 2 || q.controls.values().map(Vec::len).sum::<usize>() >= 2));
}

#[test]
fn effort_is_whole_or_half_days_within_range() {
    for bad in ["0", "0.3", "61", "-1"] {
        let text = GOOD.replace("effort_days: 3", &format!("effort_days: {bad}"));
        let err = load(&files(&text, Some(BANK))).unwrap_err();
        assert_eq!(err.field, "controls[1].effort_days", "{bad}: {err}");
        assert!(err.message.contains("half-day steps"), "{err}");
    }
    let missing = GOOD.replace("    effort_days: 3\n", "");
    let err = load(&files(&missing, Some(BANK))).unwrap_err();
    assert!(err.message.contains("effort_days"), "{err}");
    let ok = load(&files(
        &GOOD.replace("effort_days: 3", "effort_days: 0.5"),
        Some(BANK),
    ))
    .unwrap();
    assert!((ok.frameworks[0].controls[1].effort_days - 0.5).abs() < f64::EPSILON);
}

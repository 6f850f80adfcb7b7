//! Quality of the committed heads on the held-out test split: calibration (ECE) and the
//! expensive error. The full numbers come from the eval-classifier benchmark.

use triage_classifier::EmbeddedClassifier;
use triage_classifier::dataset;

#[test]
fn test_split_is_calibrated() -> Result<(), Box<dyn std::error::Error>> {
    let dir = triage_testkit::repo_root().join("models/all-minilm-l6-v2");
    if !triage_classifier::encoder::Encoder::files_present(&dir) {
        eprintln!("SKIPPED: encoder files missing in {} (run scripts/fetch-models.sh)", dir.display());
        return Ok(());
    }
    let c = EmbeddedClassifier::new(&dir, None, 4)?;
    let data = triage_testkit::repo_root().join("crates/triage-classifier/data/queries.jsonl");
    let test: Vec<_> = dataset::load(&data)?.into_iter().filter(|e| e.split == "test").collect();
    assert!(test.len() >= 300, "test split too small: {}", test.len());
    let preds = test.iter().map(|e| c.classify_blocking(&e.query, &e.history_pb())).collect::<Result<Vec<_>, _>>()?;
    let r = dataset::report(&test, &preds);
    println!("test split:\n{r}");
    assert!(r.ece < 0.05, "ECE {:.3} >= 0.05", r.ece);
    assert!(
        r.complex_as_confident_simple <= 0.02,
        "complex labelled confidently simple: {:.3}",
        r.complex_as_confident_simple
    );
    // A regression guard a little under the benchmarked 90.1 %: other CPUs' GEMM kernels
    // round differently, and one flipped borderline example must not fail CI.
    assert!(r.complexity_acc >= 0.88, "complexity accuracy {:.3}", r.complexity_acc);
    Ok(())
}

#[test]
fn data_file_is_well_formed() -> Result<(), Box<dyn std::error::Error>> {
    let all = dataset::load(&triage_testkit::repo_root().join("crates/triage-classifier/data/queries.jsonl"))?;
    assert!(all.len() >= 2000, "{} examples", all.len());
    let mut test_templates = std::collections::HashSet::new();
    let mut train_templates = std::collections::HashSet::new();
    for e in &all {
        e.targets()?;
        match e.split.as_str() {
            "test" => test_templates.insert(e.template.clone()),
            "train" => train_templates.insert(e.template.clone()),
            "dev" => false,
            other => return Err(format!("unknown split {other}").into()),
        };
    }
    // Whole templates are held out: no test template is trained on.
    assert!(test_templates.is_disjoint(&train_templates));
    for lang in ["en", "es", "pt", "mixed"] {
        assert!(all.iter().any(|e| e.language == lang && e.split == "test"), "no {lang} test examples");
    }
    Ok(())
}

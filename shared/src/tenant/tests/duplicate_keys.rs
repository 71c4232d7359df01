//! A config file with a key written twice is refused at load, naming the file and the key,
//! whichever file it is (tenant, `defaults.json`, `quotas.json`) and however deep the key is.

use super::*;

/// Writes `text` as-is (a `Value` cannot hold a repeated key).
fn write_raw(f: &Fixture, rel: &str, text: &str) {
    std::fs::write(f.path(rel), text).unwrap();
}

/// `json` with its first `{` followed by `insert` (an extra member).
fn with_member(json: &Value, insert: &str) -> String {
    let text = serde_json::to_string_pretty(json).unwrap();
    text.replacen('{', &format!("{{\n  {insert},"), 1)
}

#[test]
fn a_tenant_file_with_quotas_twice_is_refused_naming_file_and_key() {
    let f = Fixture::new();
    let acme = acme(json!({"quotas": {"transformationsPerDay": 5}}));
    write_raw(
        &f,
        "tenants/acme.json",
        &with_member(&acme, r#""quotas": {"transformationsPerDay": 500}"#),
    );
    let e = f.err(&[]);
    let file = f.path("tenants/acme.json").display().to_string();
    assert!(
        e.starts_with(&format!("{file}: quotas: duplicate key")),
        "{e}"
    );
    assert!(e.contains("remove one"), "{e}");
}

#[test]
fn a_tenant_id_written_twice_is_refused_even_when_both_agree() {
    let f = Fixture::new();
    write_raw(
        &f,
        "tenants/acme.json",
        &with_member(&acme(json!({})), r#""tenantId": "acme""#),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("acme.json: tenantId: duplicate key (again at line "),
        "{e}"
    );
}

#[test]
fn a_nested_repeat_is_named_by_its_full_path() {
    let f = Fixture::new();
    write_raw(
        &f,
        "tenants/acme.json",
        r#"{"tenantId": "acme", "name": "Acme",
            "config": {"discordServerId": "42",
                       "github": {"documentPaths": ["a/**"], "documentPaths": ["b/**"]}}}"#,
    );
    let e = f.err(&[]);
    assert!(
        e.contains("acme.json: config.github.documentPaths: duplicate key (again at line 3,"),
        "{e}"
    );
}

#[test]
fn defaults_and_quotas_files_with_a_repeat_are_refused() {
    let f = Fixture::new();
    write_raw(
        &f,
        "defaults.json",
        &with_member(&defaults_json(), r#""requestsPerMinute": 1"#),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: requestsPerMinute: duplicate key"),
        "{e}"
    );

    let f = Fixture::new();
    let mut quotas = quotas_json();
    quotas["tiers"] = json!({});
    let text = serde_json::to_string(&quotas_json()).unwrap().replacen(
        r#""starter":{"#,
        r#""starter":{"usersMax":1,"#,
        1,
    );
    write_raw(&f, "quotas.json", &text);
    let e = f.err(&[]);
    assert!(
        e.contains("quotas.json: tiers.starter.usersMax: duplicate key"),
        "{e}"
    );
}

#[test]
fn the_same_key_in_different_objects_is_not_a_repeat() {
    let f = Fixture::new();
    // `name` at the top and as a product key; `displayName` in two products: no repeat.
    f.tenant(
        "acme",
        acme(json!({"config": {"products": {"name": {"displayName": "N"}, "b": {"displayName": "B"}}}})),
    );
    assert!(f.load(&[]).is_ok(), "{:?}", f.load(&[]).err());
}

//! A broken config is refused with a message naming the file, the field and the problem.

use std::collections::BTreeSet;

use serde_json::json;

use super::super::registry::check_unused_overrides;
use super::*;

#[test]
fn type_errors_name_file_and_field() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"quotas": {"transformationsPerDay": "ten"}})),
    );
    let expected = format!(
        "{}: quotas.transformationsPerDay: invalid type: string \"ten\", expected u32",
        f.path("tenants/acme.json").display()
    );
    assert_eq!(f.err(&[]), expected);
}
#[test]
fn env_errors_name_the_variable() {
    let f = Fixture::new();
    let e = f.err(&[("ONOMANCER_TENANT_THJ_QUOTAS_USERS_MAX", "lots")]);
    assert!(
        e.contains("thj.json: quotas.usersMax: invalid type: string \"lots\""),
        "{e}"
    );
    assert!(e.contains("ONOMANCER_TENANT_THJ_QUOTAS_USERS_MAX"), "{e}");
}
#[test]
fn unknown_fields_are_refused() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({"config": {"discordServerID": "1"}})));
    let e = f.err(&[]);
    assert!(e.contains("acme.json: config"), "{e}");
    assert!(e.contains("unknown field `discordServerID`"), "{e}");
}
#[test]
fn unknown_tier_is_refused() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({"tier": "gold"})));
    let e = f.err(&[]);
    assert!(e.contains("acme.json: tier: unknown tier \"gold\""), "{e}");
    assert!(e.contains("enterprise, starter, team"), "{e}");
}
#[test]
fn tenant_id_must_match_file_name() {
    let f = Fixture::new();
    f.tenant("acme", acme(json!({"tenantId": "acme-corp"})));
    let e = f.err(&[]);
    assert!(
        e.contains("acme.json: tenantId: \"acme-corp\" does not match"),
        "{e}"
    );
}
#[test]
fn invalid_ids_and_personas_are_refused() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"config": {"defaultPersonas": ["product", "Dev Rel"]}})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("acme.json: config.defaultPersonas[1]: invalid persona"),
        "{e}"
    );

    let f = Fixture::new();
    f.tenant("Acme Corp", acme(json!({})));
    let e = f.err(&[]);
    assert!(
        e.contains("Acme Corp.json: the file name must be a tenant id"),
        "{e}"
    );
}
#[test]
fn duplicate_discord_servers_are_refused() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"config": {"discordServerId": "123456789"}})),
    );
    let e = f.err(&[]);
    assert!(
        e.contains("thj.json: config.discordServerId: server 123456789 is already used by"),
        "{e}"
    );
    assert!(e.contains("acme.json"), "{e}");
}
#[test]
fn defaults_and_quotas_errors_name_their_file() {
    let f = Fixture::new();
    let mut d = defaults_json();
    d["models"]["transform"] = json!("opus");
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: models.transform: model \"opus\" has no entry in prices"),
        "{e}"
    );

    d = defaults_json();
    d["digest"]["cron"] = json!("every monday");
    f.write("defaults.json", &d);
    assert!(f.err(&[]).contains("defaults.json: digest.cron:"));

    d = defaults_json();
    d["cache"]["l1"]["ttlMS"] = json!(1);
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: cache.l1") && e.contains("unknown field `ttlMS`"),
        "{e}"
    );

    f.write("defaults.json", &defaults_json());
    let mut q = quotas_json();
    q["tiers"]["team"]
        .as_object_mut()
        .unwrap()
        .remove("usersMax");
    f.write("quotas.json", &q);
    let e = f.err(&[]);
    assert!(
        e.contains("quotas.json: tiers.team.usersMax: missing field"),
        "{e}"
    );

    f.write("quotas.json", &quotas_json());
    std::fs::write(f.path("tenants/thj.json"), "{ \"tenantId\": ").unwrap();
    let e = f.err(&[]);
    assert!(e.contains("thj.json: not valid JSON"), "{e}");
}
#[test]
fn the_default_tenant_must_exist() {
    let f = Fixture::new();
    std::fs::remove_file(f.path("tenants/thj.json")).unwrap();
    f.tenant("acme", acme(json!({})));
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: defaultTenant: no tenant file for \"thj\""),
        "{e}"
    );
}
#[test]
fn unused_override_variables_are_refused() {
    let consulted: BTreeSet<String> = ["ONOMANCER_TENANT_THJ_NAME".to_string()].into();
    let names = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    };
    assert!(
        check_unused_overrides(&consulted, names(&["ONOMANCER_TENANT_THJ_NAME", "PATH"])).is_ok()
    );
    let e = check_unused_overrides(&consulted, names(&["ONOMANCER_TENANT_THJ_QUOTAS_USER_MAX"]))
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("ONOMANCER_TENANT_THJ_QUOTAS_USER_MAX: names no tenant field"));
}

#[test]
fn missing_fields_are_named() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        json!({"tenantId": "acme", "config": {"discordServerId": "1"}}),
    );
    let e = f.err(&[]);
    assert!(e.ends_with("acme.json: name: missing field"), "{e}");
}

#[test]
fn bad_rate_limits_are_refused() {
    let f = Fixture::new();
    f.tenant(
        "acme",
        acme(json!({"rateLimits": {"claude": {"requests": 0}}})),
    );
    let e = f.err(&[]);
    assert!(
        e.ends_with("acme.json: rateLimits.claude.requests: must be greater than 0"),
        "{e}"
    );
}

#[test]
fn bad_prices_are_refused_at_load_naming_the_field() {
    let f = Fixture::new();
    let refused = |edit: &dyn Fn(&mut Value)| {
        let mut d = defaults_json();
        edit(&mut d);
        f.write("defaults.json", &d);
        f.err(&[])
    };
    let e = refused(&|d| d["prices"]["sonnet"]["cacheReadMultiplier"] = json!(-0.1));
    assert!(
        e.contains(
            "defaults.json: prices.sonnet.cacheReadMultiplier: must be a finite number >= 0"
        ),
        "{e}"
    );
    let e = refused(&|d| d["prices"]["haiku"]["cacheWrite5mMultiplier"] = json!(-1.25));
    assert!(
        e.contains("defaults.json: prices.haiku.cacheWrite5mMultiplier:"),
        "{e}"
    );
    let e = refused(&|d| d["prices"]["sonnet"]["input"] = json!(-3.0));
    assert!(e.contains("defaults.json: prices.sonnet.input:"), "{e}");
    let e = refused(&|d| d["prices"]["sonnet"]["output"] = json!("15"));
    assert!(e.contains("defaults.json: prices.sonnet.output:"), "{e}");
    let e = refused(&|d| {
        d["prices"]["sonnet"]
            .as_object_mut()
            .unwrap()
            .remove("cacheWrite1hMultiplier");
    });
    assert!(
        e.contains("defaults.json: prices.sonnet.cacheWrite1hMultiplier: missing field"),
        "{e}"
    );

    // NaN and infinities are not JSON: the file is refused before any field is read.
    let text = serde_json::to_string_pretty(&defaults_json())
        .unwrap()
        .replacen("\"output\": 15.0", "\"output\": NaN", 1);
    assert!(text.contains("NaN"));
    std::fs::write(f.path("defaults.json"), text).unwrap();
    let e = f.err(&[]);
    assert!(e.contains("defaults.json: not valid JSON"), "{e}");
}

#[test]
fn single_flight_timing_is_read_from_defaults_and_checked() {
    let f = Fixture::new();
    let mut d = defaults_json();
    d["cache"]["singleFlight"] = json!({"leaseMs": 2500, "maxWaitMs": 60000});
    f.write("defaults.json", &d);
    let reg = f.load(&[]).unwrap();
    let flight = &reg.defaults().cache.single_flight;
    assert_eq!((flight.lease_ms, flight.max_wait_ms), (2500, 60_000));

    d["cache"]["singleFlight"] = json!({"leaseMs": 0});
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: cache.singleFlight.leaseMs: must be greater than 0"),
        "{e}"
    );
    d["cache"]["singleFlight"] = json!({"lease": 10});
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: cache.singleFlight") && e.contains("unknown field `lease`"),
        "{e}"
    );
}

#[test]
fn queue_section_errors_name_the_field() {
    let f = Fixture::new();
    let mut d = defaults_json();
    d["queue"]["reservedShare"] = json!({"bulk": 0.5});
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: queue.reservedShare") && e.contains("unknown field `bulk`"),
        "{e}"
    );
    d = defaults_json();
    d["queue"]["claimIdleMS"] = json!(1);
    f.write("defaults.json", &d);
    let e = f.err(&[]);
    assert!(
        e.contains("defaults.json: queue") && e.contains("unknown field `claimIdleMS`"),
        "{e}"
    );
}

//! The scheduler: one leader among several instances, due digests enqueued once per fire even
//! when two instances fire them, delayed jobs promoted.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use onomancer_scheduler::{DigestSchedule, Scheduler};
use onomancer_shared::{Lane, Persona, TenantId};
use redis::AsyncCommands;

use crate::helpers::*;

fn every_second() -> DigestSchedule {
    DigestSchedule {
        tenant: TenantId::new("thj"),
        personas: ["leadership", "devrel"].map(Persona::new).to_vec(),
        schedule: cron::Schedule::from_str("* * * * * *").unwrap(),
    }
}

#[tokio::test]
async fn exactly_one_scheduler_leads_and_fires_are_enqueued_once() {
    let t = TestQueue::new(fast_config()).await;
    let created = Utc::now();
    let a = Scheduler::new(t.queue.clone(), vec![every_second()]);
    let b = Scheduler::new(t.queue.clone(), vec![every_second()]);
    let (la, lb) = (a.lead().await.unwrap(), b.lead().await.unwrap());
    assert!(la ^ lb, "exactly one leads (a: {la}, b: {lb})");
    assert_eq!(a.lead().await.unwrap(), la, "renewal keeps the lease");

    // Even if both fired (a leadership change mid-fire), the idempotency key of each fire
    // keeps one job per (fire, persona).
    let (mut a, mut b) = (a, b);
    a.tick_once().await.unwrap();
    let second_tick = Utc::now();
    b.tick_once().await.unwrap();
    let end = Utc::now();
    let stream = t.queue.keys().stream(&TenantId::new("thj"), Lane::Bulk);
    let len: usize = t.redis.conn.clone().xlen(&stream).await.unwrap();
    // A new leader catches up on the last hour of fires; both instances fire the same ones.
    // However slow the machine, every fire of the hour before the second tick started is in,
    // and none after the last tick ended.
    let fires_between = |from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>| {
        every_second()
            .schedule
            .after(&from)
            .take_while(|f| *f <= to)
            .count()
    };
    let at_most = fires_between(created - chrono::Duration::seconds(3601), end);
    let at_least = fires_between(second_tick - chrono::Duration::seconds(3599), second_tick);
    assert_eq!(len % 2, 0, "one job per persona per fire");
    assert!(
        len <= 2 * at_most,
        "{len} jobs for {at_most} fires: duplicates"
    );
    assert!(
        len >= 2 * at_least,
        "{len} jobs for at least {at_least} fires: fires missed"
    );
}

#[tokio::test]
async fn the_leader_promotes_due_retries() {
    let t = TestQueue::new(fast_config()).await;
    let tenant = TenantId::new("thj");
    // A retry scheduled 50 ms from now, with no worker running to promote it.
    let script = Script {
        fail_until_attempt: 1,
        retry_after_ms: Some(50),
        ..Script::default()
    };
    let e = t
        .queue
        .enqueue(scripted("thj", Lane::Default, &script))
        .await
        .unwrap();
    let h = std::sync::Arc::new(ScriptedHandler::default());
    let mut options = onomancer_shared::queue::WorkerOptions::new("no-promote");
    options.promote_delayed = false;
    options.block = Duration::from_millis(50);
    let runtime = onomancer_shared::queue::WorkerRuntime::new(t.queue.clone(), h.clone(), options);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runtime.run(stop.clone().cancelled_owned()));
    wait_until(Duration::from_secs(5), "first attempt failed", || async {
        t.queue
            .status(&tenant, &e.id)
            .await
            .unwrap()
            .is_some_and(|s| s.state == onomancer_shared::queue::JobState::Retrying)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.started.lock().unwrap().len(),
        1,
        "nothing promotes it without a scheduler"
    );
    let mut s = Scheduler::new(t.queue.clone(), vec![]);
    assert!(s.lead().await.unwrap());
    s.tick_once().await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "retried after promotion",
        || async {
            t.queue
                .status(&tenant, &e.id)
                .await
                .unwrap()
                .is_some_and(|s| s.state == onomancer_shared::queue::JobState::Succeeded)
        },
    )
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_scheduler_that_lost_leadership_never_deletes_the_new_leaders_lease() {
    let t = TestQueue::new(fast_config()).await;
    let leader = t.queue.keys().scheduler_leader();
    let old = Scheduler::new(t.queue.clone(), vec![]);
    let instance = old.instance().to_owned();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(old.run(stop.clone()));
    wait_until(
        Duration::from_secs(5),
        "the old scheduler leads",
        || async {
            let holder: Option<String> = t.redis.conn.clone().get(&leader).await.unwrap();
            holder.as_deref() == Some(instance.as_str())
        },
    )
    .await;

    // The old leader stalls past its lease (it still believes it leads) and another instance
    // takes leadership; then the old one shuts down.
    let _: () = t.redis.conn.clone().del(&leader).await.unwrap();
    assert!(t
        .queue
        .leases()
        .hold(&leader, "new-leader", Duration::from_secs(10))
        .await
        .unwrap());
    stop.cancel();
    task.await.unwrap();

    let holder: Option<String> = t.redis.conn.clone().get(&leader).await.unwrap();
    assert_eq!(holder.as_deref(), Some("new-leader"));
}

#[tokio::test]
async fn a_leader_that_stops_releases_its_own_lease() {
    let t = TestQueue::new(fast_config()).await;
    let leader = t.queue.keys().scheduler_leader();
    let s = Scheduler::new(t.queue.clone(), vec![]);
    let instance = s.instance().to_owned();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(s.run(stop.clone()));
    wait_until(Duration::from_secs(5), "the scheduler leads", || async {
        let holder: Option<String> = t.redis.conn.clone().get(&leader).await.unwrap();
        holder.as_deref() == Some(instance.as_str())
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let held: bool = t.redis.conn.clone().exists(&leader).await.unwrap();
    assert!(!held, "the next instance may lead at once");
}

//! End-to-end tests of the queue and the roles, against the machine's real Redis, with real
//! worker processes where the behaviour is about processes (SIGKILL, SIGTERM, scaling).

mod cli_args;
mod e2e;
mod helpers;
mod paid_work;
mod private_redis;
mod queue_cluster;
mod queue_failures;
mod queue_fairness;
mod queue_liveness;
mod queue_outage;
mod queue_processes;
mod queue_resilience;
mod queue_semantics;
mod queue_tenants;
mod redis_wait;
mod scheduler;
mod tidy;
mod upstream_deferrals;
mod upstream_limits;

//! Tenant context and layered configuration (defaults, tier, tenant file, environment).

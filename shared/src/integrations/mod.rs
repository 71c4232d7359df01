//! Clients for the outside services a job's effects go to: Discord (posting output), Google
//! Docs and Drive (saving documents, reading them back), and guarded fetching of user-supplied
//! documents (Discord attachments, GitHub files, Google Docs).

pub mod discord;
pub mod fetch;
pub mod google;

//! The slot check of every keyed command. PLACEHOLDER during the session that builds it.

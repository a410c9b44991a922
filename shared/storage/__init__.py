"""MongoDB access: one client per process, a group-committing outbox writer."""

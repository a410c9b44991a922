"""The events service: the event log and webhook delivery.

- Consumes every event of the stream (durable consumer `events`, shared by
  replicas), stores it in `events` (kept 30 days; the gateway serves the Events
  API from that collection) and plans the webhooks it causes.
- EventCallbackUrl webhooks (events.md §2) and assignment callbacks
  (workflows.md §6): signed form POSTs, recorded in `webhook_deliveries` before
  the first attempt, retried per Twilio's connection overrides, resumed after a
  restart. See `deliverer` for concurrency and claims, `assignment` for what an
  assignment callback's answer causes.
- Never posts to loopback, link-local or private addresses unless
  `TASKROUTER_WEBHOOK_ALLOW_PRIVATE=true` (`address_guard`).

Run it with `python -m services.events`; settings are in `settings`.
"""

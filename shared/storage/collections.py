"""Collection names, with the one service that writes each.

gateway:          accounts, api_keys, workspaces, activities, task_channels,
                  task_queues, workflows, rate_windows
queue-dispatcher: workers, tasks, reservations
workflow-router:  routing_positions
statistics:       statistics_buckets, statistics_progress
                  (statistics_seen: written by earlier versions, expiring)
events:           events, webhook_deliveries
every service:    outbox_<service>
"""

ACCOUNTS = "accounts"
API_KEYS = "api_keys"
WORKSPACES = "workspaces"
ACTIVITIES = "activities"
TASK_CHANNELS = "task_channels"
TASK_QUEUES = "task_queues"
WORKFLOWS = "workflows"
RATE_WINDOWS = "rate_windows"

WORKERS = "workers"
TASKS = "tasks"
RESERVATIONS = "reservations"
# One document per workspace: when each worker last got a reservation per channel.
WORKER_IDLE = "worker_idle"

ROUTING_POSITIONS = "routing_positions"

STATISTICS_BUCKETS = "statistics_buckets"
STATISTICS_PROGRESS = "statistics_progress"

EVENTS = "events"
WEBHOOK_DELIVERIES = "webhook_deliveries"

CONFIGURATION = (WORKSPACES, ACTIVITIES, TASK_CHANNELS, TASK_QUEUES, WORKFLOWS)

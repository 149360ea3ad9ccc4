"""Small helpers every part uses the same way: backoff, log-once-then-summarise, durable files, handing
freed memory back."""

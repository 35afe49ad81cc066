"""The capture log: records encoded as log lines (entries, metric lines, degraded
replacements), the batch that caches them, the child process that writes them, and reading them back."""

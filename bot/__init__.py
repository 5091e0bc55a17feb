"""Application wiring: configuration, command line, console chat and Telegram start-up."""

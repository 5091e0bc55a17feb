"""What office staff see and do: statistics, unanswered questions, charts, announcements."""

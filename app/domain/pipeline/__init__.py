"""Sales pipelines, their ordered stages, deals, stage history, board, forecast and funnel."""

"""Report stage: plain data about a run (model), made from a run's Trace (assemble), and reasoning over it: diagnosis of a failure
(diagnose, explain) and diffs of two reports (diff). No rendering here.
"""

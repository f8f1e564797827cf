"""``course grade``: hardened, parallel autograding on top of nbgrader (issue 8).

Modules, in the order a submission meets them:

* :mod:`.pipeline` -- the loop: collect, autograde, merge, feedback, report;
* :mod:`.repair`   -- lost nbgrader metadata, deleted and edited cells;
* :mod:`.tamper`   -- static scan of the student's code;
* :mod:`.pool`, :mod:`.worker` -- one process and one kernel per submission;
* :mod:`.kernel`, :mod:`.launch`, :mod:`.guard` -- limited kernels that survive
  crashes, and the runtime tamper guard;
* :mod:`.verdict`  -- what happened in each cell; no credit after tampering;
* :mod:`.gradebook` -- merging per-student gradebooks into the course one;
* :mod:`.report`   -- the summary table and CSV;
* :mod:`.sample`   -- generated submissions (tests, benchmark, a demo class).

Nothing heavy is imported here.
"""

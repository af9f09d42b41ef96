"""Times tenet-python (the SDK, defaults) on calls whose jobs take a known time.
Usage: sdk_time_to_result.py API_URL API_KEY JOB_MS CALLS; prints one JSON list of seconds."""

import json
import sys
import time

from tenet import TenetClient

url, key, calls = sys.argv[1], sys.argv[2], int(sys.argv[4])
client = TenetClient(key, api_url=url)
times = []
for _ in range(calls):
    started = time.perf_counter()
    decision = client.execute(service="github", tool_name="github.repos.get", arguments={"owner": "a", "repo": "b"})
    assert decision.execution_error == "credential_not_found", decision.execution_error
    times.append(time.perf_counter() - started)
print(json.dumps(times))

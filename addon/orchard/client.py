"""The farm's API, as the add-on uses it: standard-library HTTP, no `bpy`.

Every call goes to `{server}/api/external/v1` with `Authorization: Bearer RJ-…`. A refusal
arrives as `{"error": {"code", "message", "details"}}` and becomes a `FarmError` whose text is
meant for the artist (the operator's report); the key is never part of any message.

Safe to use from any thread: a `Farm` holds no state beyond its address and key.
"""

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

API_PREFIX = "/api/external/v1"
# Files over this go up in parts (`POST /uploads` with `parts`), each this big but the last.
DEFAULT_PART_BYTES = 64 * 1024 * 1024
# The farm's floor for every part but the last.
MIN_PART_BYTES = 5 * 1024 * 1024
# Statuses after which nothing changes.
TERMINAL_STATUSES = ("completed", "failed", "canceled")
# How long one request may wait on the network, in seconds.
REQUEST_TIMEOUT_S = 60
# Upload and download bodies move in blocks this big (progress is reported per block).
BLOCK_BYTES = 1024 * 1024
# A 429 is retried this many times, after its `Retry-After`.
RATE_LIMIT_RETRIES = 5


class FarmError(Exception):
    """A refusal or an unreachable farm, with a message for a person."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self):
        return self.message


class Farm:
    """One farm, as one API key sees it."""

    def __init__(self, server, api_key):
        server = (server or "").strip().rstrip("/")
        if not server:
            raise FarmError("No farm URL: set it in Preferences > Add-ons > Orchard")
        if not server.startswith(("http://", "https://")):
            server = "http://" + server
        api_key = (api_key or "").strip()
        if not api_key:
            raise FarmError("No API key: set it in Preferences > Add-ons > Orchard")
        self.server = server
        self._api_key = api_key

    def __repr__(self):
        # The key stays out of every representation, logs included.
        return "Farm(%r)" % self.server

    def dashboard_url(self, job_id):
        """The job's page on the farm's dashboard."""
        return "%s/jobs/%s" % (self.server, job_id)

    # The Renderjuice surface (renderjuice-api.md §2) and Orchard's extensions (orchard.md §3a).

    def check_access(self):
        """One cheap authenticated call: refuses a wrong key or farm before any real work."""
        self.call("GET", "/jobs?pageSize=1")

    def create_upload(self, file_name, file_type, parts=None):
        """`POST /uploads` → `{uploadUrl, slug, expiresAt}` (`partUrls` with `parts`)."""
        body = {"fileName": file_name, "fileType": file_type}
        if parts is not None:
            body["parts"] = parts
        return self.call("POST", "/uploads", body)

    def complete_upload(self, slug, parts, upload_id=None):
        """`POST /uploads/{slug}/complete` with each part's ETag."""
        body = {"parts": [{"partNumber": number, "etag": etag} for number, etag in parts]}
        if upload_id:
            body["uploadId"] = upload_id
        return self.call("POST", "/uploads/%s/complete" % urllib.parse.quote(slug, safe=""), body)

    def create_job(self, slug, main_file=None):
        """`POST /jobs` → the job, in `created`."""
        body = {"slug": slug}
        if main_file:
            body["mainFile"] = main_file
        return self.call("POST", "/jobs", body)

    def validate(self, job_id):
        """`POST /jobs/{id}/validate` → the job (`validated`, or `failed` for an unreadable file)."""
        return self.call("POST", "/jobs/%s/validate" % _segment(job_id))

    def get_job(self, job_id):
        """`GET /jobs/{id}` → the job (unwrapped from `data`)."""
        return self.call("GET", "/jobs/%s" % _segment(job_id))["data"]

    def render(self, job_id, requested_config):
        """`POST /jobs/{id}/render` with `requestedRenderConfig`."""
        body = {"requestedRenderConfig": requested_config}
        return self.call("POST", "/jobs/%s/render" % _segment(job_id), body)

    def cancel(self, job_id):
        """`POST /jobs/{id}/cancel`."""
        return self.call("POST", "/jobs/%s/cancel" % _segment(job_id))

    def delete_job(self, job_id):
        """`DELETE /jobs/{id}` (Orchard extension)."""
        return self.call("DELETE", "/jobs/%s" % _segment(job_id))

    def progress(self, job_id):
        """`GET /jobs/{id}/progress` → the counters, or `None` when the job is not running."""
        counters = self.call("GET", "/jobs/%s/progress" % _segment(job_id))
        return counters[0] if counters else None

    def downloads(self, job_id):
        """`GET /jobs/{id}/downloads`."""
        return self.call("GET", "/jobs/%s/downloads" % _segment(job_id))

    def workers(self):
        """`GET /workers` (Orchard extension) → the list of workers."""
        return self.call("GET", "/workers")["workers"]

    # Flows built on the calls.

    def wait_validated(self, job, timeout_s=600.0, poll_s=0.5):
        """Polls a job in `validating` until it leaves it; returns the job."""
        deadline = time.monotonic() + timeout_s
        while job.get("status") in ("created", "validating"):
            if time.monotonic() > deadline:
                raise FarmError("The farm took over %d s to analyse the scene" % timeout_s)
            time.sleep(poll_s)
            job = self.get_job(job["id"])
        return job

    def upload_file(self, path, file_name, file_type, part_bytes=DEFAULT_PART_BYTES, on_progress=None):
        """Uploads a file (in parts when it is over `part_bytes`) and returns its slug.

        `on_progress(sent, total)` is called from this thread after every block.
        """
        total = os.path.getsize(path)
        part_bytes = max(int(part_bytes), MIN_PART_BYTES)
        sent = [0]

        def advance(n_bytes):
            sent[0] += n_bytes
            if on_progress is not None:
                on_progress(sent[0], total)

        if total <= part_bytes:
            target = self.create_upload(file_name, file_type)
            self._put(target["uploadUrl"], path, 0, total, advance)
            return target["slug"]
        n_parts = (total + part_bytes - 1) // part_bytes
        target = self.create_upload(file_name, file_type, parts=n_parts)
        part_urls = target.get("partUrls") or []
        if len(part_urls) != n_parts:
            raise FarmError("The farm answered %d part URLs for %d parts" % (len(part_urls), n_parts))
        etags = []
        for index, url in enumerate(part_urls):
            offset = index * part_bytes
            length = min(part_bytes, total - offset)
            etags.append((index + 1, self._put(url, path, offset, length, advance)))
        self.complete_upload(target["slug"], etags, target.get("uploadId"))
        return target["slug"]

    def fetch(self, url, destination, on_progress=None):
        """Downloads a signed URL (absolute, or relative to the farm) into `destination`."""
        if url.startswith("/"):
            url = self.server + url
        partial = destination + ".part"
        request = urllib.request.Request(url, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response, open(partial, "wb") as out:
                while True:
                    block = response.read(BLOCK_BYTES)
                    if not block:
                        break
                    out.write(block)
                    if on_progress is not None:
                        on_progress(len(block))
        except urllib.error.HTTPError as error:
            _remove_quietly(partial)
            raise _error_from_response(error, "downloading %s" % os.path.basename(destination)) from None
        except (urllib.error.URLError, OSError) as error:
            _remove_quietly(partial)
            raise FarmError("Downloading %s failed: %s" % (os.path.basename(destination), _reason(error))) from None
        os.replace(partial, destination)

    # The HTTP underneath.

    def call(self, method, path, body=None):
        """One API call; returns the decoded JSON (or `None` for an empty answer)."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            request = urllib.request.Request(self.server + API_PREFIX + path, data=data, method=method)
            request.add_header("Authorization", "Bearer " + self._api_key)
            request.add_header("Accept", "application/json")
            request.add_header("User-Agent", "orchard-blender-addon")
            if data is not None:
                request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                    raw = response.read()
            except urllib.error.HTTPError as error:
                if error.code == 429 and attempt < RATE_LIMIT_RETRIES:
                    time.sleep(_retry_after(error))
                    continue
                raise _error_from_response(error, "%s %s" % (method, path)) from None
            except (urllib.error.URLError, OSError) as error:
                raise FarmError("Cannot reach the farm at %s: %s" % (self.server, _reason(error))) from None
            if not raw:
                return None
            try:
                return json.loads(raw.decode("utf-8"))
            except ValueError:
                raise FarmError("The farm at %s answered %s %s with something that is not JSON; is it an Orchard farm?"
                                % (self.server, method, path)) from None
        raise FarmError("The farm kept refusing: too many requests")  # Unreachable: the loop returns or raises.

    def _put(self, url, path, offset, length, advance):
        """PUTs `length` bytes of `path` from `offset` to a signed URL; returns the ETag."""
        if url.startswith("/"):
            url = self.server + url
        with open(path, "rb") as source:
            source.seek(offset)
            body = _ProgressReader(source, length, advance)
            request = urllib.request.Request(url, data=body, method="PUT")
            request.add_header("Content-Length", str(length))
            request.add_header("Content-Type", "application/octet-stream")
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                    response.read()
                    return (response.headers.get("ETag") or "").strip()
            except urllib.error.HTTPError as error:
                raise _error_from_response(error, "uploading") from None
            except (urllib.error.URLError, OSError) as error:
                raise FarmError("Uploading to the farm at %s failed: %s" % (self.server, _reason(error))) from None


class _ProgressReader:
    """A file window `urllib` reads in blocks, counting what went out."""

    def __init__(self, source, length, advance):
        self._source = source
        self._left = length
        self._advance = advance

    def read(self, size=-1):
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        block = self._source.read(min(size, BLOCK_BYTES))
        self._left -= len(block)
        self._advance(len(block))
        return block


def _segment(value):
    return urllib.parse.quote(str(value), safe="")


def _retry_after(error):
    try:
        return min(max(float(error.headers.get("Retry-After", "1")), 0.5), 30.0)
    except ValueError:
        return 1.0


def _reason(error):
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, socket.timeout):
        return "no answer (timed out)"
    return str(reason)


def _error_from_response(error, doing):
    """The farm's error body, as a sentence for the artist."""
    try:
        body = json.loads(error.read().decode("utf-8"))
        detail = body["error"]
        message = str(detail.get("message") or detail.get("code") or "")
        code = detail.get("code")
    except Exception:  # Not the farm's error shape: a proxy's page, an empty body.
        message, code = "", None
    if error.code == 401:
        text = "The farm refused the API key (check it in Preferences > Add-ons > Orchard)"
        return FarmError(text + (": " + message if message else ""), error.code, code)
    if error.code == 403 and doing.startswith(("uploading", "downloading")):
        text = "The farm refused the signed URL while %s (it may have expired)" % doing
        return FarmError(text + (": " + message if message else ""), error.code, code)
    if not message:
        message = "HTTP %d %s" % (error.code, error.reason)
    return FarmError("The farm refused %s: %s" % (doing, message), error.code, code)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass

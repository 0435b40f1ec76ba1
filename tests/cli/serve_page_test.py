#!/usr/bin/env python3
"""serve_page_test.py — drives the web page of `clipadapt serve` in headless Chromium through the
DevTools protocol (a minimal WebSocket client, standard library only): loads the page, picks an
image through the form's file input, submits the form, and checks the top-k bars in the DOM; then
adds the image as an example of a new class and checks the class table. Loopback only.
Usage: serve_page_test.py BASE_URL IMAGE API_KEY [SCREENSHOT.png]
Prints one 'ok'/'FAIL' line per check and exits non-zero when any failed.
"""
import base64, json, os, shutil, socket, struct, subprocess, sys, tempfile, time, urllib.request

base, image, api_key = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
shot = sys.argv[4] if len(sys.argv) > 4 else None
assert base.startswith("http://127.0.0.1:"), "loopback only"
failed = passed = 0


def check(name, cond, detail=""):
    global failed, passed
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:300]))
    failed += 0 if cond else 1
    passed += 1 if cond else 0


class WS:
    """Just enough of RFC 6455 for the DevTools socket: text frames, client-side masking."""

    def __init__(self, url):
        hostport, path = url[len("ws://"):].split("/", 1)
        host, port = hostport.split(":")
        assert host in ("127.0.0.1", "localhost")
        self.s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.s.recv(4096)
        assert b" 101 " in buf.split(b"\r\n")[0], buf[:200]
        self.rest = buf.split(b"\r\n\r\n", 1)[1]
        self.id = 0

    def _read(self, n):
        while len(self.rest) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("devtools socket closed")
            self.rest += chunk
        out, self.rest = self.rest[:n], self.rest[n:]
        return out

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            msg += self._read(n)
            if b0 & 0x80:
                return json.loads(msg)

    def call(self, method, **params):
        self.id += 1
        data = json.dumps({"id": self.id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                else bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        while True:
            m = self.recv()
            if m.get("id") == self.id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

    def wait(self, expr, seconds=20):
        t = time.time() + seconds
        while time.time() < t:
            v = self.js(expr)
            if v:
                return v
            time.sleep(0.1)
        return None


chrome = shutil.which("chromium") or shutil.which("chromium-browser")
if not chrome:
    check("chromium installed (scripts/setup.sh test installs Debian's chromium)", False)
    sys.exit(1)
prof = tempfile.mkdtemp(prefix="ca-chromium-")
proc = subprocess.Popen([chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking", "--disable-sync",
                         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                         f"--user-data-dir={prof}", "--window-size=1640,760", "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    port_file = os.path.join(prof, "DevToolsActivePort")
    for _ in range(300):
        if os.path.exists(port_file) and len(open(port_file).read().split()) >= 2:
            break
        time.sleep(0.1)
    dport = int(open(port_file).read().split()[0])
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{dport}/json/list", timeout=10))
    page = [t for t in targets if t.get("type") == "page"][0]
    ws = WS(page["webSocketDebuggerUrl"])
    ws.call("Page.enable")
    ws.call("Runtime.enable")
    ws.call("Page.navigate", url=base + "/")
    opts = ws.wait("document.readyState === 'complete' && document.querySelectorAll('#classifier option').length")
    check("page loads and lists the classifiers", opts and opts >= 1, opts)
    ws.js("document.getElementById('classifier').value = 'tip'; document.getElementById('classifier')"
          ".dispatchEvent(new Event('change'))")
    rows = ws.wait("document.querySelectorAll('#classes tbody tr').length")
    check("class table filled", rows and rows >= 3, rows)
    # pick the image through the form's file input, then submit the form
    doc = ws.call("DOM.getDocument")
    node = ws.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#file")["nodeId"]
    ws.call("DOM.setFileInputFiles", files=[image], nodeId=node)
    ws.js("document.getElementById('form').requestSubmit()")
    bars = ws.wait("document.querySelectorAll('#result .bar').length")
    check("top-k bars appear", bars and bars >= 1, bars)
    top = ws.js("(() => { const b = document.querySelector('#result .bar'); return b && [b.dataset.cls, "
                "b.querySelector('.prob').textContent, b.querySelector('.fill').style.width]; })()")
    want = json.load(urllib.request.urlopen(urllib.request.Request(
        base + "/v1/classify?classifier=tip&top_k=5", data=open(image, "rb").read(), method="POST"), timeout=30))
    check("top class in the DOM = the API's answer", top and top[0] == want["top"][0]["class"], (top, want["top"][0]))
    check("bar width shows the probability", top and top[2].endswith("%") and float(top[2][:-1]) > 0, top)
    shown = ws.js("document.getElementById('preview').style.display === 'block' && "
                  "document.getElementById('preview').naturalWidth")
    check("the image is shown beside the bars", shown and shown > 0, shown)
    # add it as an example of a new class
    ws.js(f"document.getElementById('label').value = 'page class'; document.getElementById('apikey').value = {json.dumps(api_key)};"
          "document.getElementById('add').click()")
    row = ws.wait("Array.from(document.querySelectorAll('#classes tbody tr')).map(r => r.textContent)"
                  ".find(t => t.startsWith('page class'))")
    check("new class listed with its example count", row == "page class1", row)
    st = ws.js("document.getElementById('status').textContent")
    check("status line reports the add", st and "page class now has 1 example" in st, st)
    ws.js("document.getElementById('form').requestSubmit()")
    ws.wait("document.getElementById('status').textContent.startsWith('classified')")
    if shot:
        data = ws.call("Page.captureScreenshot", format="png")["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(data))
        check("screenshot written", os.path.getsize(shot) > 1000)
finally:
    proc.kill()
    proc.wait()
    shutil.rmtree(prof, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

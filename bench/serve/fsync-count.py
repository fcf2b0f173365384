import json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request
bin_=sys.argv[1]; n=int(sys.argv[2]) if len(sys.argv)>2 else 2000
d=tempfile.mkdtemp(); H=os.path.dirname(os.path.abspath(__file__))
open(d+"/offload.toml","w").write('[[pool]]\nname = "bench"\njobs = ["noop"]\nkind = "node"\nmin = 2\nmax = 2\nconcurrency = 1\n')
err=open(d+"/err.log","w")
p=subprocess.Popen([bin_,"serve","--config",d+"/offload.toml","--jobs",H+"/jobs","--data",d+"/data","--listen","127.0.0.1:0"],stdin=subprocess.DEVNULL,stdout=subprocess.DEVNULL,stderr=err)
url=None
for _ in range(300):
    m=re.search(r"listening on (http://127\.0\.0\.1:\d+)", open(d+"/err.log").read())
    if m: url=m.group(1); break
    time.sleep(0.1)
def get(path): return json.load(urllib.request.urlopen(url+path))
def post(path, body):
    r=urllib.request.Request(url+path, data=json.dumps(body).encode(), headers={"content-type":"application/json"}); return json.load(urllib.request.urlopen(r))
for _ in range(300):
    w=[x for x in get("/v1/workers")["workers"] if x["state"] in ("ready","idle","busy")]
    if len(w)>=2: break
    time.sleep(0.1)
perf=subprocess.Popen(["perf","stat","-x,","-e","syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync","-p",str(p.pid),"-o",d+"/perf.txt"])
time.sleep(0.5)
t=time.time()
for b in range(n//100):
    post("/v1/jobs/batch", {"jobs":[{"job":"noop","params":{"n":i}} for i in range(100)]})
while True:
    if not get("/v1/jobs?state=queued&limit=1")["jobs"] and not get("/v1/jobs?state=running&limit=1")["jobs"]: break
    time.sleep(0.1)
el=time.time()-t
perf.send_signal(2); perf.wait(timeout=30); p.terminate(); p.wait(timeout=30)
s=open(d+"/perf.txt").read()
calls=sum(int(l.split(",")[0]) for l in s.splitlines() if "sys_enter" in l)
print(f"{bin_}: {n} jobs in {el:.2f} s ({n/el:.0f}/s), fsync+fdatasync calls {calls} = {calls/n:.2f} per job")
shutil.rmtree(d, ignore_errors=True)

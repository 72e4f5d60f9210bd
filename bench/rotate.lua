-- wrk script: one request shape per run, cookies rotated per request.
-- Arguments (after `--`): METHOD PATH COOKIE_FILE MODE NTHREADS
--   COOKIE_FILE: one cookie value per line, or "-" for no cookie;
--   MODE "rr": every thread cycles round-robin through all cookies
--              (starting at a different offset), so all are in use;
--   MODE "once": the threads split the cookies and use each one once
--              (for logout); they wrap around only when exhausted, which
--              bench.py detects and reports.
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local reqs = {}
local n, i, step

function init(args)
  local method, path, file, mode, nthreads = args[1], args[2], args[3], args[4], tonumber(args[5])
  local cookies = {}
  if file ~= "-" then
    for line in io.lines(file) do
      if #line > 0 then cookies[#cookies + 1] = line end
    end
  end
  if #cookies == 0 then
    reqs[1] = wrk.format(method, path, {})
  elseif mode == "once" then
    for k = tid + 1, #cookies, nthreads do
      reqs[#reqs + 1] = wrk.format(method, path, { Cookie = "session=" .. cookies[k] })
    end
  else
    for k = 1, #cookies do
      reqs[k] = wrk.format(method, path, { Cookie = "session=" .. cookies[k] })
    end
  end
  n = #reqs
  if mode == "once" then
    i = 0
  else
    i = (tid * math.floor(n / nthreads)) % n
  end
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

-- bench/wrk_pipeline.lua - wrk sends PIPELINE (default 16) requests per
-- write and counts every response (bench/h1.sh).
local depth = tonumber(os.getenv("PIPELINE") or "16")
if depth < 1 then depth = 16 end

init = function(args)
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, wrk.path)
  end
  req = table.concat(r)
end

request = function()
  return req
end

-- wrk script for benches/load.sh: posts the seed callback (two abnormal
-- events, four frame gaps), each request a new report (data_time) of one of
-- STREAMS streams, so nothing is a duplicate. T and SIGN: a signature valid
-- for the run (it covers only t, so one serves every body).
local streams = tonumber(os.getenv("STREAMS") or "1000")
local offset = tonumber(os.getenv("OFFSET") or "0")
local t = os.getenv("T") or "0"
local sign = os.getenv("SIGN") or ""
local threads, counter = 1, 0
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  -- id: this thread's number, set by setup() in the thread's globals.
  id = id or 0
  threads = tonumber(os.getenv("THREADS") or "1")
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local template = '{"abnormal_event":[{"count":2,"detail":[{"desc":"video frame arrive interval too long, interval=3046(msec)","occur_time":1670588070569},{"desc":"video frame arrive interval too long, interval=2953(msec)","occur_time":1670588073522}],"type":6,"type_desc_cn":"视频帧到达间隔大于1000(ms)","type_desc_en":"video frame arrive interval bigger than 1000(ms)"},{"count":2,"detail":[{"desc":"audio frame arrive interval too long, interval=3009(msec)","occur_time":1670588070532},{"desc":"audio frame arrive interval too long, interval=2917(msec)","occur_time":1670588073486}],"type":7,"type_desc_cn":"音频帧到达间隔大于1000(ms)","type_desc_en":"audio frame arrive interval bigger than 1000(ms)"}],"appid":1250000000,"data_time":%d,"domain":"push.example.com","event_type":321,"interface":"general_callback","path":"live","report_interval":5000,"sequence":"2263925735398723142","stream_id":"room-%d","stream_param":"txSecret=f5828cd4a8a09109304b060172fb3960&txTime=665982e4","timeout":5000,"user_ip":"203.0.113.7","t":%s,"sign":"%s"}'

request = function()
  counter = counter + 1
  local n = offset + counter * threads + id
  local body = string.format(template, 1764000000000 + n, n % streams, t, sign)
  return wrk.format(nil, "/callback", nil, body)
end

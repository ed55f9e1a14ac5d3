-- A filter for lua_plugin_test: keeps messages of priority <= max_priority
-- (a header), counts what it has seen, and fails loudly on "boom".
max_priority = 3
seen = 0

local function header(msg, key)
  for _, h in ipairs(msg.headers) do
    if h[1] == key then return h[2] end
  end
  return nil
end

function filter(msg)
  seen = seen + 1
  if msg.payload == "boom" then
    error("asked to explode")
  end
  local p = tonumber(header(msg, "priority") or "0")
  if p > max_priority then
    return false, "priority " .. p
  end
  return true
end

function count(msg)
  seen = seen + 1
  return seen % 2 == 1
end

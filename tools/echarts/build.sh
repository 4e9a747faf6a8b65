#!/bin/sh
# Rebuilds prov4ml/ui/static/vendor/echarts.min.js: Apache ECharts with only the parts entry.js names,
# bundled by esbuild as one minified script that defines the global `echarts`, then checks it draws
# every plot of plot.js exactly as the full build of the same release (check.py).
#
#   sh tools/echarts/build.sh        # needs node >= 18 and npm; the check needs python with selenium,
#                                    # chromium and chromedriver (PYTHON=... picks the python; CHECK=0 skips it)
#
# The versions are pinned in package.json and package-lock.json (echarts 6.1.0, with its zrender 6.1.0
# and tslib 2.3.0; esbuild 0.28.2). The licenses of the three bundled packages are copied beside the bundle.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VENDOR=$(cd "$HERE/../../prov4ml/ui/static/vendor" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/prov4ml-echarts.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/entry.js" "$WORK/"
cd "$WORK"
npm ci --no-audit --no-fund --loglevel=error
VERSION=$(node -p 'require("echarts/package.json").version')
BANNER="/*
* Licensed to the Apache Software Foundation (ASF) under one
* or more contributor license agreements.  See the NOTICE file
* distributed with this work for additional information
* regarding copyright ownership.  The ASF licenses this file
* to you under the Apache License, Version 2.0 (the
* \"License\"); you may not use this file except in compliance
* with the License.  You may obtain a copy of the License at
*
*   http://www.apache.org/licenses/LICENSE-2.0
*
* Unless required by applicable law or agreed to in writing,
* software distributed under the License is distributed on an
* \"AS IS\" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
* KIND, either express or implied.  See the License for the
* specific language governing permissions and limitations
* under the License.
*/
/* A custom build of Apache ECharts $VERSION for prov4ml (tools/echarts/build.sh, tools/echarts/entry.js):
   line, scatter and parallel series; grid, legend, tooltip, axis pointer, toolbox (box zoom), continuous
   visualMap; grid.containLabel; the SVG renderer. Bundles zrender (BSD-3-Clause) and tslib (0BSD). */"
# process.env.NODE_ENV: ECharts' production code paths, without its development warnings.
npx --no-install esbuild entry.js --bundle --minify --format=iife --target=es2017 \
  --define:process.env.NODE_ENV='"production"' --legal-comments=eof --charset=utf8 \
  --banner:js="$BANNER" --log-level=warning --outfile="$VENDOR/echarts.min.js"
cp node_modules/echarts/LICENSE "$VENDOR/LICENSE.echarts"
cp node_modules/echarts/NOTICE "$VENDOR/NOTICE.echarts"
cp node_modules/echarts/licenses/LICENSE-d3 "$VENDOR/LICENSE.d3"  # LICENSE.echarts names the d3 code in it
cp node_modules/zrender/LICENSE "$VENDOR/LICENSE.zrender"
cp node_modules/tslib/LICENSE.txt "$VENDOR/LICENSE.tslib"
echo "wrote $VENDOR/echarts.min.js ($(wc -c < "$VENDOR/echarts.min.js") bytes, ECharts $VERSION)"
if [ "${CHECK:-1}" != 0 ]; then
  "${PYTHON:-python3}" "$HERE/check.py" "$WORK/node_modules/echarts/dist/echarts.min.js" "$VENDOR/echarts.min.js"
fi

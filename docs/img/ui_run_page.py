"""The run page's screenshot for docs/ui.md: the runs of tests/test_ui_run_page.py, served and shot in Chromium.

    python docs/img/ui_run_page.py      # writes docs/img/ui-run-page.png
"""

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent.parent / "tests")]

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

from prov4ml.runs import read_run  # noqa: E402
from prov4ml.ui import serve  # noqa: E402
from test_ui_run_page import _consumer, _inputs, _producer  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        producer = _producer(tmp / "prov", _inputs(tmp / "files"))
        last = [a for a in read_run(producer).artifacts if a["kind"] == "model_version"][-1]
        try:
            _consumer(tmp / "prov", producer / last["location"])
        except BaseException:  # pytest.raises outside a test: the consumer's failure is the point
            pass
        server = serve(tmp / "prov", port=0)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            driver.get(server.url + "run/train/run_0")
            driver.execute_script("document.getElementById('datasets').scrollIntoView()")
            driver.save_screenshot(str(HERE / "ui-run-page.png"))
        finally:
            driver.quit()
            server.shutdown()


if __name__ == "__main__":
    main()

"""The HTML report end to end, in a real browser.

A small demo run (train_chexnet --demo --arch tiny, two short epochs) with simulated reader files in
<data>/readers/ (which --demo picks up) writes report.html; `chex eval --html --curves --readers` writes
another from the run's predictions. Both pages are
  - valid HTML (html5lib's strict parser; `tidy -errors`),
  - self-contained (no script, no external URL),
  - drawn with the right numbers: every ROC path vertex, mapped back through its plot's frame, is a
    ROC point `chex eval --curves` computed, every such point lies within half a pixel of the path, and
    the operating-point marker sits at the validation-chosen threshold's point,
  - rendered by headless Chromium into a screenshot that is not blank, with the curves' colours
    present in quantity and the CAM gallery's images in the run's page.
Exit 77 (CTest: skipped) when chromium, html5lib or tidy is missing.

When the NIH sample (100 real radiographs, ../shared/data/nih-sample) is at hand, the same checks
run on a few steps of training on it and `chex eval --html` of its test predictions.

usage: check_report.py CHEX TRAIN_CHEXNET WORK_DIR [NIH_SAMPLE_DIR]
"""
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import png_pixels  # noqa: E402

SVG = '{http://www.w3.org/2000/svg}'
FINDINGS = ['Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia',
            'Pneumothorax', 'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia']


def skip(why):
    print(f'SKIPPED: {why}')
    sys.exit(77)


def run(*args):
    print('$', ' '.join(args), flush=True)
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        print(result.stdout)
        sys.exit(f'FAILED: exit status {result.returncode}')
    return result.stdout


def check(condition, message):
    if not condition:
        sys.exit(f'FAILED: {message}')


def write_readers(data, folder, count=4):
    """Simulated readers: the truth with reader-specific misses (20%) and false marks (2% a finding)."""
    os.makedirs(folder, exist_ok=True)
    rows = list(csv.DictReader(open(os.path.join(data, 'Data_Entry_2017_v2020.csv'))))
    files = []
    for r in range(1, count + 1):
        rnd = random.Random(r)
        path = os.path.join(folder, f'reader_{r}.csv')
        with open(path, 'w') as f:
            f.write('Image Index,Finding Labels\n')
            for row in rows:
                truth = set() if row['Finding Labels'] == 'No Finding' else set(row['Finding Labels'].split('|'))
                marks = {x for x in truth if rnd.random() > 0.2} | {x for x in FINDINGS if rnd.random() < 0.02}
                f.write(row['Image Index'] + ',' + ('|'.join(sorted(marks)) or 'No Finding') + '\n')
        files.append(path)
    return files


def parse(path):
    import html5lib
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    with open(path, 'rb') as f:
        document = parser.parse(f)  # raises on the first parse error
    tidy = subprocess.run(['tidy', '-errors', '-q', path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(tidy.returncode == 0 and not tidy.stdout.strip(), f'tidy reports errors in {path}:\n{tidy.stdout}')
    text = open(path, encoding='utf-8').read()
    check('<script' not in text, f'{path} has a script')
    check('http://' not in text.replace('http://www.w3.org/2000/svg', '') and 'https://' not in text,
          f'{path} refers to something outside the file')
    return document


def frame_mapping(svg):
    """Data (x, y) -> pixel, and back, from the plot's frame and its data ranges."""
    frame = svg.find(f'{SVG}rect')
    check(frame is not None and frame.get('class') == 'frame', 'a plot without its frame')
    left, top = float(frame.get('x')), float(frame.get('y'))
    width, height = float(frame.get('width')), float(frame.get('height'))
    x0, x1 = map(float, svg.get('data-x-range').split())
    y0, y1 = map(float, svg.get('data-y-range').split())
    return (lambda px, py: (x0 + (px - left) / width * (x1 - x0), y0 + (top + height - py) / height * (y1 - y0)),
            width / (x1 - x0), height / (y1 - y0))


def path_vertices(d):
    tokens = d.replace('M', ' ').replace('L', ' ').split()
    return [(float(tokens[i]), float(tokens[i + 1])) for i in range(0, len(tokens), 2)]


def check_roc_paths(document, curves_csv, evaluation):
    roc = {}
    for row in csv.DictReader(open(curves_csv)):
        if row['curve'] == 'roc':
            roc.setdefault(row['label'], []).append((float(row['x']), float(row['y']), float(row['threshold'])))
    svgs = [s for s in document.iter(f'{SVG}svg') if s.find(f".//{SVG}path[@class='roc']") is not None]
    check(len(svgs) == len(roc), f'{len(svgs)} ROC plots drawn, but chex eval computed {len(roc)} ROC curves')
    for svg in svgs:
        path = svg.find(f".//{SVG}path[@class='roc']")
        label = path.get('data-class')
        to_data, sx, sy = frame_mapping(svg)
        vertices = [to_data(*p) for p in path_vertices(path.get('d'))]
        points = roc[label]
        # Coordinates are written to 0.01 px.
        tx, ty = 0.006 / sx, 0.006 / sy
        for vx, vy in vertices:
            check(any(abs(vx - x) <= tx and abs(vy - y) <= ty for x, y, _ in points),
                  f'{label}: path vertex ({vx:.4f}, {vy:.4f}) is no ROC point of chex eval')
        for x, y, _ in points:  # thinning drops points closer than 1/3 px to one kept
            near = min(((x - vx) * sx) ** 2 + ((y - vy) * sy) ** 2 for vx, vy in vertices) ** 0.5
            check(near <= 0.35, f'{label}: ROC point ({x:.4f}, {y:.4f}) is {near:.2f} px from the drawn path')
        threshold = evaluation['thresholds'][label]
        marker = svg.find(f".//{SVG}circle[@class='operating-point']")
        if threshold is None:
            check(marker is None, f'{label}: an operating point without a threshold')
            continue
        check(marker is not None, f'{label}: no operating point marked')
        mx, my = to_data(float(marker.get('cx')), float(marker.get('cy')))
        at = min((p for p in points if p[2] >= threshold), key=lambda p: p[2])
        check(abs(mx - at[0]) <= tx and abs(my - at[1]) <= ty,
              f'{label}: operating point at ({mx:.4f}, {my:.4f}), the threshold {threshold} gives {at[:2]}')
    print(f'{len(svgs)} ROC paths match chex eval --curves, with their operating points')


def colour_count(image, rgb, tolerance=40):
    width, height, channels, rows = image
    r0, g0, b0 = rgb
    count = 0
    for row in rows:
        for i in range(0, width * channels, channels):
            if abs(row[i] - r0) + abs(row[i + 1] - g0) + abs(row[i + 2] - b0) <= tolerance:
                count += 1
    return count


def screenshot(page, out, height):
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    with tempfile.TemporaryDirectory() as profile:
        args = [browser, '--headless', '--disable-gpu', f'--user-data-dir={profile}', '--hide-scrollbars',
                f'--window-size=1280,{height}', f'--screenshot={out}', 'file://' + os.path.abspath(page)]
        if os.geteuid() == 0:
            args.insert(1, '--no-sandbox')  # Chromium refuses to run as root with its sandbox
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=True)
    check(os.path.exists(out), f'chromium wrote no screenshot of {page}')
    return png_pixels.read_png(out)


def check_screenshot(image, name, gallery, curve_pixels=1500):
    width, height, channels, rows = image
    non_white = sum(1 for row in rows for i in range(0, width * channels, channels * 4)
                    if row[i] + row[i + 1] + row[i + 2] < 720)
    fraction = non_white / (width * height / 4)
    check(fraction > 0.03, f'{name}: the page looks blank ({fraction:.3%} non-white)')
    blue, green = colour_count(image, (0x00, 0x72, 0xB2)), colour_count(image, (0x00, 0x9E, 0x73))
    check(blue > curve_pixels, f'{name}: too few ROC-curve pixels ({blue})')
    check(green > curve_pixels, f'{name}: too few precision-recall-curve pixels ({green})')
    if gallery:
        # The CAM overlays: a grey radiograph under a viridis heatmap has thousands of distinct colours.
        bottom = set()
        for row in rows[height // 2:]:
            for i in range(0, width * channels, channels * 3):
                bottom.add((row[i], row[i + 1], row[i + 2]))
        check(len(bottom) > 2000, f'{name}: the gallery seems missing ({len(bottom)} distinct colours below the middle)')
    print(f'{name}: {fraction:.1%} non-white, {blue} ROC and {green} PR curve pixels')


def main():
    chex, train, work = sys.argv[1:4]
    if not (shutil.which('chromium') or shutil.which('chromium-browser')):
        skip('chromium is not installed (Debian: apt-get install chromium)')
    if not shutil.which('tidy'):
        skip('tidy is not installed (Debian: apt-get install tidy)')
    try:
        import html5lib  # noqa: F401
    except ImportError:
        skip('html5lib is not installed for this python (Debian: apt-get install python3-html5lib)')
    shutil.rmtree(work, ignore_errors=True)
    data, out = os.path.join(work, 'demo'), os.path.join(work, 'run')
    run(chex, 'make-demo', '--out', data, '--images', '160', '--size', '64')
    readers = write_readers(data, os.path.join(data, 'readers'))
    run(train, '--demo', '--data', data, '--arch', 'tiny', '--image-size', '64', '--batch-size', '16', '--epochs', '2',
        '--bootstrap', '200', '--workers', '0', '--out', out)

    # The run's own report, with the readers found in <data>/readers/.
    report = os.path.join(out, 'report.html')
    check(os.path.exists(report), 'train_chexnet wrote no report.html')
    check('Reader study' in open(os.path.join(out, 'test_report.md')).read(), 'test_report.md lacks the reader study')
    run_json = json.load(open(os.path.join(out, 'test_report.json')))
    check(len(run_json['reader_study']['readers']) == 4, 'test_report.json lacks the four readers')
    document = parse(report)
    check(len(document.findall('.//img')) > 0, 'the run report has no CAM gallery')
    check(document.find(".//section[@id='training']//*[@class='val-loss']") is not None, 'no validation loss curve')

    # chex eval's page for the same predictions, its curves as CSV.
    page, curves, evaluation = (os.path.join(work, n) for n in ('eval.html', 'curves.csv', 'eval.json'))
    labels = os.path.join(data, 'Data_Entry_2017_v2020.csv')
    run(chex, 'eval', '--preds', os.path.join(out, 'test_predictions.csv'), '--labels', labels, '--val-preds',
        os.path.join(out, 'val_predictions.csv'), '--bootstrap', '200', '--html', page, '--curves', curves, '--json',
        evaluation, '--readers', *readers)
    document = parse(page)
    evaluation = json.load(open(evaluation))
    check(evaluation['reader_study']['images'] == evaluation['images'], 'the readers should cover every test image')
    check_roc_paths(document, curves, evaluation)
    # `chex report` redoes the run's page from its folder.
    os.remove(report)
    run(chex, 'report', out)
    check_roc_paths(parse(report), curves, evaluation)

    check_screenshot(screenshot(report, os.path.join(work, 'run.png'), 6000), 'run report', gallery=True)
    check_screenshot(screenshot(page, os.path.join(work, 'eval.png'), 4500), 'eval report', gallery=False)

    nih = sys.argv[4] if len(sys.argv) > 4 else ''
    if nih and os.path.exists(os.path.join(nih, 'Data_Entry_2017_v2020.csv')):
        check_nih_sample(chex, train, nih, os.path.join(work, 'nih'))
    else:
        print(f'NIH sample not found at {nih!r}: the real-data report was NOT checked')
    print('OK')


def check_nih_sample(chex, train, nih, work):
    """Real radiographs: a few steps on the NIH sample's official split, its report and chex eval's."""
    out = os.path.join(work, 'run')
    run(train, '--data', nih, '--split', 'official', '--arch', 'tiny', '--image-size', '64', '--batch-size', '8',
        '--max-steps', '6', '--bootstrap', '200', '--workers', '0', '--out', out)
    report = os.path.join(out, 'report.html')
    document = parse(report)
    check(len(document.findall('.//img')) > 0, 'the NIH run report has no CAM gallery')
    page, curves, evaluation = (os.path.join(work, n) for n in ('eval.html', 'curves.csv', 'eval.json'))
    run(chex, 'eval', '--preds', os.path.join(out, 'test_predictions.csv'), '--labels',
        os.path.join(nih, 'Data_Entry_2017_v2020.csv'), '--val-preds', os.path.join(out, 'val_predictions.csv'),
        '--bootstrap', '200', '--html', page, '--curves', curves, '--json', evaluation)
    evaluation_json = json.load(open(evaluation))
    check_roc_paths(parse(page), curves, evaluation_json)
    check_roc_paths(document, curves, evaluation_json)
    check_screenshot(screenshot(report, os.path.join(work, 'run.png'), 6000), 'NIH run report', gallery=True,
                     curve_pixels=300)
    check_screenshot(screenshot(page, os.path.join(work, 'eval.png'), 4500), 'NIH eval report', gallery=False,
                     curve_pixels=300)


if __name__ == '__main__':
    main()
